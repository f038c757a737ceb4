using Nurture.Contracts;
using Nurture.Core;

namespace Nurture.Core.Tests;

/// <summary>What an erase leaves of events and of the reasons made from them.</summary>
public class When_a_lead_is_erased
{
    private const string Marker = "mk-secret";
    private readonly Given _given = new();

    private Lead At(LeadStage stage) => Lead.New(_given.LeadId, Given.Start) with { Stage = stage, Captured = true };

    public static TheoryData<LeadStage, string> FreeTextReasons() => new()
    {
        { LeadStage.Mql, nameof(LeadRejectedBySales) },
        { LeadStage.Sql, nameof(DealLost) },
        { LeadStage.Lead, nameof(LeadDisqualified) },
    };

    [Theory]
    [MemberData(nameof(FreeTextReasons))]
    public void Should_erase_a_stored_reason_to_what_the_erased_event_gives(LeadStage stage, string type)
    {
        LeadEvent e = type switch
        {
            nameof(LeadRejectedBySales) => _given.Rejected($"{Marker} has no budget"),
            nameof(DealLost) => _given.Lost() with { Reason = $"went with {Marker}" },
            _ => _given.Disqualified() with { Reason = $"{Marker} is a student" },
        };

        var original = Assert.Single(_given.Apply(At(stage), e).Transitions).Reason;
        var fromBlank = Assert.Single(_given.Apply(At(stage), Erasure.Blank(e)).Transitions).Reason;

        Assert.Contains(Marker, original, StringComparison.Ordinal);
        Assert.Equal(fromBlank, Erasure.Reason(original));
        Assert.DoesNotContain(Marker, fromBlank, StringComparison.Ordinal);
    }

    [Fact]
    public void Should_keep_the_machine_click_mark_and_drop_every_other_property()
    {
        var click = _given.Did(ActivityType.EmailClicked) with { Properties = new Dictionary<string, string> { [Clicks.Machine] = "true", ["url"] = $"https://example.com/{Marker}", [Marker] = "x" } };

        var blank = (LeadActivityRecorded)Erasure.Blank(click);

        Assert.True(Clicks.ByMachine(blank));
        Assert.Equal([Clicks.Machine], blank.Properties!.Keys);
    }

    [Fact]
    public void Should_erase_the_recycle_reason_kept_on_the_lead()
    {
        var recycled = _given.Apply(At(LeadStage.Mql), _given.Rejected(Marker)).Lead;
        Assert.Equal(Marker, recycled.RecycleReason);

        var erased = _given.Apply(recycled, _given.Erased()).Lead;

        Assert.Equal(Erasure.Marker, erased.RecycleReason);
    }
}
