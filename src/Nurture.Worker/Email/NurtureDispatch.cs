using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MimeKit;
using Nurture.Contracts;
using Nurture.Core;
using Nurture.Worker.Metrics;
using Nurture.Worker.Storage;

namespace Nurture.Worker.Email;

/// <summary>
/// Sends the nurture steps that are due, at the speed of the mail server. One query claims a batch under a lease (so
/// several workers share the work and a dead one's claims come back) with the leads, their recent sends and their
/// suppressions; the send rules (window in the lead's time zone, frequency cap, conditions, exit) are checked in memory;
/// the emails go out over <see cref="NurtureMailer.Lanes"/> persistent connections at once, each rendered while its
/// connection's last send is recorded, and each recorded (sent, the next step scheduled) as soon as the server accepts
/// it, before that connection sends another. So a crash sends at most one email per connection twice, with the same
/// Message-ID. The connections' records are written together (<see cref="SendRecorder"/>).
/// While one batch goes out the next is claimed. When the server cannot be used the round stops and puts its steps back
/// without spending their attempts; <see cref="WaitForServerAsync"/> probes until it answers.
/// </summary>
public sealed partial class NurtureDispatch(
    LeadStore store, Leads.LeadEventHandler handler, Definition definition, MailComposer composer, NurtureMailer mailer,
    EmailSettings settings, TimeProvider clock, NurtureMetrics metrics, ILogger<NurtureDispatch> log)
{
    /// <summary>Passes over steps put back after a broken connection, within one call of <see cref="DispatchAllDueAsync"/>.</summary>
    private const int Passes = 3;

    /// <summary>Who holds a claim: this process.</summary>
    public string Claimer { get; init; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>The last round stopped because the mail server could not be used; its steps are pending again, attempts untouched.</summary>
    public bool ServerUnavailable { get; private set; }

    private TimeSpan Lease => TimeSpan.FromSeconds(settings.LeaseSeconds);

    /// <summary>One batch: claim, check, send, record. Returns how many steps it claimed (0: nothing was due).</summary>
    public async Task<int> DispatchDueAsync(CancellationToken cancel = default) => (await RoundAsync(1, cancel)).Claimed;

    /// <summary>Batches until nothing more is due, the server cannot be used, or a send cannot be recorded. Returns how many steps it claimed.</summary>
    public async Task<int> DispatchAllDueAsync(CancellationToken cancel = default)
    {
        var total = 0;
        for (var pass = 0; pass < Passes && !cancel.IsCancellationRequested; pass++)
        {
            var round = await RoundAsync(int.MaxValue, cancel);
            total += round.Claimed;
            // A connection broke under some messages: they are due again at once; take them now rather than next round.
            if (round.Stopped || round.PutBack == 0) break;
        }
        return total;
    }

    /// <summary>
    /// Probes the mail server after 1 s, 2 s, 4 s … (at most Nurture:Email:Smtp:ProbeMaxSeconds apart) until it answers.
    /// The dispatch job then sends at once, instead of every step waiting out a fixed delay.
    /// </summary>
    public async Task WaitForServerAsync(CancellationToken cancel = default)
    {
        var delay = TimeSpan.FromSeconds(1);
        var max = TimeSpan.FromSeconds(settings.ProbeMaxSeconds);
        var down = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            await Task.Delay(delay, cancel);
            if (await mailer.ProbeAsync(cancel))
            {
                ServerUnavailable = false;
                LogServerBack(log, down.Elapsed.TotalSeconds);
                return;
            }
            delay = delay * 2 < max ? delay * 2 : max;
        }
    }

    private async Task<Round> RoundAsync(int maxBatches, CancellationToken cancel)
    {
        var round = new Round(new SendRecorder(store, Claimer));
        // Room for one batch: the next is claimed while this one goes out, so no connection waits for the database.
        var queue = Channel.CreateBounded<Sending>(new BoundedChannelOptions(Math.Max(settings.BatchSize, mailer.Lanes)) { SingleWriter = true });
        var lanes = Enumerable.Range(0, mailer.Lanes).Select(lane => Task.Run(() => LaneAsync(lane, queue.Reader, round, cancel), CancellationToken.None)).ToArray();
        try
        {
            for (var batch = 0; batch < maxBatches && !round.Stopped && !cancel.IsCancellationRequested; batch++)
            {
                var now = clock.GetUtcNow();
                var due = await store.ClaimDueWithLeadsAsync(Claimer, now, Lease, settings.BatchSize, now.AddDays(-definition.Nurture.FrequencyCap.PerDays), cancel);
                round.Claimed += due.Count;
                foreach (var step in due)
                {
                    metrics.DispatchLag((now - step.Step.DueAt).TotalSeconds);
                    if (await CheckAsync(step, now, cancel) is not { } lead) continue;
                    if (round.Stopped) await PutBackAsync(step.Step, round, cancel);
                    else await queue.Writer.WriteAsync(new Sending(step.Step, lead, now), cancel);
                }
                if (due.Count < settings.BatchSize) break;
            }
        }
        finally
        {
            queue.Writer.TryComplete();
            await Task.WhenAll(lanes);
        }
        ServerUnavailable = round.Unavailable;
        return round;
    }

    /// <summary>The send rules, in memory: the lead when the step may go out now; otherwise the step is closed, skipped or deferred here.</summary>
    private async Task<Lead?> CheckAsync(DueStep due, DateTimeOffset now, CancellationToken cancel)
    {
        var step = due.Step;
        if (due.Lead is not { } lead)
        {
            await store.EndNurtureAsync(step.LeadId, "lead not found", cancel);
            return null;
        }
        var check = NurturePlan.Check(lead, step.Track, step.Step, now, due.RecentSends, definition);
        if (check.Verdict == StepVerdict.Send && Unsendable(lead, due.Suppressed) is { } why) check = new StepCheck(StepVerdict.Exit, why);
        switch (check.Verdict)
        {
            case StepVerdict.Exit:
                await store.EndNurtureAsync(lead.Id, check.Reason, cancel);
                return null;
            case StepVerdict.Skip:
                await store.RecordSkippedAsync(step, Claimer, check.Reason, now, NurturePlan.Next(lead, step.Track, step.Step, now, definition), cancel);
                return null;
            case StepVerdict.Defer:
                await store.DeferAsync(step, Claimer, check.RetryAt ?? now.AddHours(1), check.Reason, cancel);
                return null;
            default:
                return lead;
        }
    }

    /// <summary>
    /// One connection: renders the next email while the last one's send is recorded, waits for that record, sends, and
    /// starts recording what the server said. So the connection never sends before its last send is recorded (a crash
    /// sends at most one email per connection twice), and the rendering costs the connection no time.
    /// </summary>
    private async Task LaneAsync(int lane, ChannelReader<Sending> queue, Round round, CancellationToken cancel)
    {
        var recording = Task.CompletedTask;
        await foreach (var sending in queue.ReadAllAsync(CancellationToken.None))
        {
            var step = sending.Step;
            try
            {
                var message = round.Stopped || cancel.IsCancellationRequested ? null : Compose(step, sending.Lead, clock.GetUtcNow());
                await recording;
                if (message is null || round.Stopped || cancel.IsCancellationRequested)
                {
                    await PutBackAsync(step, round, CancellationToken.None);
                    continue;
                }
                // A claim waiting this long (the last record too may have waited: a busy SQLite file waits up to 10 s) could
                // outlive its lease while sending, and another worker would send it too: put it back.
                if (clock.GetUtcNow() - sending.ClaimedAt > Lease / 2)
                {
                    await store.DeferAsync(step, Claimer, step.DueAt, "the round ran long; sent in the next one", CancellationToken.None);
                    continue;
                }
                var result = await mailer.SendAsync(lane, message, cancel);
                recording = RecordAsync(step, sending.Lead, message, result, round);
            }
            catch (OperationCanceledException) when (cancel.IsCancellationRequested)
            {
                await PutBackAsync(step, round, CancellationToken.None);
            }
            catch (Exception e)
            {
                // Most likely the database: a step that cannot be put back or deferred; its claim runs out instead.
                LogCannotRecord(log, e, step.Id, step.LeadId);
                round.Stop(e.Message, unavailable: false);
            }
        }
        await recording;
    }

    /// <summary>Back to pending, due as before, without spending an attempt (the claim counted one).</summary>
    private async Task PutBackAsync(ClaimedStep step, Round round, CancellationToken cancel)
    {
        try
        {
            await store.DeferAsync(step, Claimer, step.DueAt, round.Reason ?? "put back", cancel);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
        {
            // Its claim runs out instead and the step comes back then.
            LogCannotRecord(log, e, step.Id, step.LeadId);
        }
    }

    private static string? Unsendable(Lead lead, bool suppressed)
    {
        if (lead.Profile.Email is not { } email || !MailboxAddress.TryParse(email, out _)) return "no valid address";
        return suppressed ? "address suppressed (unsubscribed or bounced)" : null;
    }

    private MimeMessage Compose(ClaimedStep step, Lead lead, DateTimeOffset now) =>
        composer.Compose(lead, step.Track, step.Step, step.Template, LeadStore.StepKey(step), now);

    /// <summary>Records what the server said about one message; a record that fails stops the round (no send may follow an unrecorded one).</summary>
    private async Task RecordAsync(ClaimedStep step, Lead lead, MimeMessage message, SendResult result, Round round)
    {
        try
        {
            await RecordOrThrowAsync(step, lead, message, result, round);
        }
        catch (Exception e)
        {
            LogCannotRecord(log, e, step.Id, step.LeadId);
            round.Stop(e.Message, unavailable: false);
        }
    }

    private async Task RecordOrThrowAsync(ClaimedStep step, Lead lead, MimeMessage message, SendResult result, Round round)
    {
        // Recorded whatever happens to the round: the server has answered for this message.
        var cancel = CancellationToken.None;
        var now = clock.GetUtcNow();
        switch (result.Outcome)
        {
            case SendOutcome.Sent:
                var next = NurturePlan.Next(lead, step.Track, step.Step, now, definition);
                if (!await round.Recorder.RecordAsync(new SentEmail(step, message.MessageId!, now, next))) LogClaimLost(log, step.Id, lead.Id);
                metrics.EmailSent(step.Track);
                if (next is not null) metrics.EmailScheduled(next.Track);
                break;
            case SendOutcome.TryLater when step.Attempts < settings.MaxAttempts:
                // The server's answer about this message: 1, 2, 4, 8 … minutes, at most six hours.
                var delay = TimeSpan.FromMinutes(Math.Min(360, Math.Pow(2, step.Attempts - 1)));
                await store.MarkFailedAsync(step.Id, Claimer, result.Reason ?? "temporary failure", now + delay, cancel);
                metrics.EmailFailed("temporary");
                break;
            case SendOutcome.Interrupted:
                // Not the step's fault: due again at once, no attempt spent; its connection reconnects for the next message.
                round.CountPutBack();
                await store.DeferAsync(step, Claimer, step.DueAt, result.Reason ?? "connection broke", cancel);
                metrics.EmailFailed("interrupted");
                break;
            case SendOutcome.Unavailable:
                // Not the step's fault either: the round stops, its steps stay due, and the server is probed until it answers.
                round.Stop(result.Reason ?? "mail server unavailable", unavailable: true);
                await store.DeferAsync(step, Claimer, step.DueAt, round.Reason!, cancel);
                metrics.EmailFailed("unavailable");
                break;
            case SendOutcome.Bounced:
                await store.MarkFailedAsync(step.Id, Claimer, "bounced: " + result.Reason, null, cancel);
                // The address is bounced for good: the domain marks the lead, suppresses the address and ends nurture.
                await handler.HandleNowAsync([new EmailBounced
                {
                    EventId = Lifecycle.DerivedId(LeadStore.StepKey(step), "bounced"), LeadId = lead.Id, OccurredAt = now,
                    Kind = BounceKind.Hard, Reason = $"{result.Reason} (message {message.MessageId})",
                }], "dispatch", cancel);
                metrics.EmailBounced();
                break;
            default:
                await store.MarkFailedAsync(step.Id, Claimer, result.Reason ?? "failed", null, cancel);
                metrics.EmailFailed("permanent");
                break;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Step {Step} of {Lead} was sent after its claim ended; another worker may send it again (same Message-ID)")]
    private static partial void LogClaimLost(ILogger logger, long step, string lead);

    [LoggerMessage(Level = LogLevel.Error, Message = "Step {Step} of {Lead}: the send could not be recorded; the round stops and the step's claim runs out (it may go out again, same Message-ID)")]
    private static partial void LogCannotRecord(ILogger logger, Exception e, long step, string lead);

    [LoggerMessage(Level = LogLevel.Information, Message = "The SMTP server answers again after {Seconds:F0} s; sending resumes")]
    private static partial void LogServerBack(ILogger logger, double seconds);

    private sealed record Sending(ClaimedStep Step, Lead Lead, DateTimeOffset ClaimedAt);

    /// <summary>What the lanes of one round share: whether to stop, and why; and the recorder that writes their sends together.</summary>
    private sealed class Round(SendRecorder recorder)
    {
        private volatile string? _reason;
        private int _putBack;

        public SendRecorder Recorder { get; } = recorder;
        public int Claimed { get; set; }
        public int PutBack => _putBack;
        public bool Unavailable { get; private set; }
        public bool Stopped => _reason is not null;
        public string? Reason => _reason;

        public void CountPutBack() => Interlocked.Increment(ref _putBack);

        public void Stop(string reason, bool unavailable)
        {
            _reason ??= reason;
            if (unavailable) Unavailable = true;
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
