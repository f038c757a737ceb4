using Microsoft.Extensions.Logging;
using MimeKit;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Email;

/// <summary>
/// Sends the nurture steps that are due: claims a batch under a lease (so several workers share the work and a dead
/// one's claims come back), asks the plan whether each may go out now (send window in the lead's time zone, frequency
/// cap, conditions, exit), renders, sends, and records each send with the next step in one transaction.
/// </summary>
public sealed class NurtureDispatch(
    LeadStore store, Definition definition, MailComposer composer, NurtureMailer mailer,
    EmailSettings settings, TimeProvider clock, NurtureMetrics metrics, ILogger<NurtureDispatch> log)
{
    /// <summary>Who holds a claim: this process.</summary>
    public string Claimer { get; init; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>One round: claim, check, send, record. Returns how many steps it claimed (0: nothing was due; negative: the mail server could not be used).</summary>
    public async Task<int> DispatchDueAsync(CancellationToken cancel = default)
    {
        var now = clock.GetUtcNow();
        var claimed = await store.ClaimDueAsync(Claimer, now, TimeSpan.FromSeconds(settings.LeaseSeconds), settings.BatchSize, cancel);
        if (claimed.Count == 0) return 0;

        var sending = new List<(ClaimedStep Step, Lead Lead, MimeMessage Message)>();
        foreach (var step in claimed)
        {
            metrics.DispatchLag((now - step.DueAt).TotalSeconds);
            var stored = await store.LoadLeadAsync(step.LeadId, cancel);
            if (stored is null)
            {
                await store.EndNurtureAsync(step.LeadId, "lead not found", cancel);
                continue;
            }
            var lead = stored.Lead;
            var recent = await store.RecentSendsAsync(lead.Id, now.AddDays(-definition.Nurture.FrequencyCap.PerDays), cancel);
            var check = NurturePlan.Check(lead, step.Track, step.Step, now, recent, definition);
            if (check.Verdict == StepVerdict.Send && await Unsendable(lead, cancel) is { } why) check = new StepCheck(StepVerdict.Exit, why);
            switch (check.Verdict)
            {
                case StepVerdict.Exit:
                    await store.EndNurtureAsync(lead.Id, check.Reason, cancel);
                    break;
                case StepVerdict.Skip:
                    await store.RecordSkippedAsync(step, Claimer, check.Reason, now, NurturePlan.Next(lead, step.Track, step.Step, now, definition), cancel);
                    break;
                case StepVerdict.Defer:
                    await store.DeferAsync(step, Claimer, check.RetryAt ?? now.AddHours(1), check.Reason, cancel);
                    break;
                default:
                    sending.Add((step, lead, Compose(step, lead, now)));
                    break;
            }
        }
        if (sending.Count == 0) return claimed.Count;

        // A goal, an unsubscribe or a bounce may have cancelled a step since it was claimed: send only what is still ours.
        var ours = await store.StillClaimedAsync(Claimer, cancel);
        sending.RemoveAll(s => !ours.Contains(s.Step.Id));
        // A round that took half the lease already could outlive it while sending, and another worker would send too: put them back.
        if (clock.GetUtcNow() - now > TimeSpan.FromSeconds(settings.LeaseSeconds / 2.0))
        {
            foreach (var s in sending) await store.DeferAsync(s.Step, Claimer, clock.GetUtcNow(), "the round ran long; sent in the next one", cancel);
            return claimed.Count;
        }
        var results = await mailer.SendAsync(sending.Select(s => s.Message).ToList(), cancel);
        for (var i = 0; i < sending.Count; i++)
        {
            try
            {
                await RecordAsync(sending[i].Step, sending[i].Lead, sending[i].Message, results[i], cancel);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The others are still recorded; this step's claim runs out and it goes out again (same Message-ID).
                log.LogError(e, "Recording step {Step} of {Lead} ({Outcome}) failed", sending[i].Step.Id, sending[i].Lead.Id, results[i].Outcome);
            }
        }
        // The server could not be used at all: stop here rather than claim the rest of the backlog for nothing.
        return results.Any(r => r.Outcome == SendOutcome.Unavailable) ? -claimed.Count : claimed.Count;
    }

    /// <summary>Rounds until nothing more is due (or the batch came back short).</summary>
    public async Task<int> DispatchAllDueAsync(CancellationToken cancel = default)
    {
        var total = 0;
        while (!cancel.IsCancellationRequested)
        {
            var claimed = await DispatchDueAsync(cancel);
            total += Math.Abs(claimed);
            if (claimed < settings.BatchSize) break;
        }
        return total;
    }

    private async Task<string?> Unsendable(Lead lead, CancellationToken cancel)
    {
        if (lead.Profile.Email is not { } email || !MailboxAddress.TryParse(email, out _)) return "no valid address";
        return await store.IsSuppressedAsync(email, cancel) ? "address suppressed (unsubscribed or bounced)" : null;
    }

    private MimeMessage Compose(ClaimedStep step, Lead lead, DateTimeOffset now) =>
        composer.Compose(lead, step.Track, step.Step, step.Template, LeadStore.StepKey(step), now);

    private async Task RecordAsync(ClaimedStep step, Lead lead, MimeMessage message, SendResult result, CancellationToken cancel)
    {
        var now = clock.GetUtcNow();
        switch (result.Outcome)
        {
            case SendOutcome.Sent:
                var next = NurturePlan.Next(lead, step.Track, step.Step, now, definition);
                if (!await store.RecordSentAsync(step, Claimer, message.MessageId!, now, next, cancel))
                {
                    log.LogWarning("Step {Step} of {Lead} was sent after its claim ended; another worker may send it again (same Message-ID)", step.Id, lead.Id);
                }
                metrics.EmailSent(step.Track);
                if (next is not null) metrics.EmailScheduled(next.Track);
                break;
            case SendOutcome.TryLater when step.Attempts < settings.MaxAttempts:
                // 1, 2, 4, 8 … minutes, at most six hours.
                var delay = TimeSpan.FromMinutes(Math.Min(360, Math.Pow(2, step.Attempts - 1)));
                await store.MarkFailedAsync(step.Id, Claimer, result.Reason ?? "temporary failure", now + delay, cancel);
                metrics.EmailFailed("temporary");
                break;
            case SendOutcome.Unavailable:
                // Not the step's fault: back to pending without using up an attempt.
                await store.DeferAsync(step, Claimer, now.AddMinutes(5), result.Reason ?? "mail server unavailable", cancel);
                metrics.EmailFailed("unavailable");
                break;
            case SendOutcome.Bounced:
                await store.MarkFailedAsync(step.Id, Claimer, "bounced: " + result.Reason, null, cancel);
                // The address is bounced for good: the domain marks the lead, suppresses the address and ends nurture.
                await store.ApplyWithRetryAsync([new EmailBounced
                {
                    EventId = Lifecycle.DerivedId(LeadStore.StepKey(step), "bounced"), LeadId = lead.Id, OccurredAt = now,
                    Kind = BounceKind.Hard, Reason = $"{result.Reason} (message {message.MessageId})",
                }], definition, now, cancel: cancel);
                metrics.EmailBounced();
                break;
            default:
                await store.MarkFailedAsync(step.Id, Claimer, result.Reason ?? "failed", null, cancel);
                metrics.EmailFailed("permanent");
                break;
        }
    }
}

/// <summary>Where recipients reach this worker over HTTP: Nurture:Email:PublicUrl, or the first address it listens on.</summary>
public sealed class PublicAddress(Uri? configured, Microsoft.AspNetCore.Hosting.Server.IServer? server)
{
    public Uri BaseUrl => configured
        ?? (server?.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.FirstOrDefault() is { } listening
            ? new Uri(listening.Replace("0.0.0.0", "localhost", StringComparison.Ordinal).Replace("[::]", "localhost", StringComparison.Ordinal))
            : new Uri(WorkerHost.DefaultUrl));

    public string Unsubscribe(string token) => new Uri(BaseUrl, $"unsubscribe/{token}").ToString();
}
