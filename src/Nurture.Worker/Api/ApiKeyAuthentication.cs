using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Nurture.Worker.Api;

/// <summary>
/// ASP.NET Core authentication scheme "ApiKey": a request that presents Nurture:Api:Key in the X-Api-Key header is an
/// authenticated API client. A challenge answers 401 as problem details saying whether the key was missing or wrong.
/// </summary>
public sealed class ApiKeyAuthentication(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiSettings settings, IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string Header = "X-Api-Key";

    /// <summary>Policies the endpoints name; one key grants both today, separate keys could later grant one each.</summary>
    public const string WriteEvents = "events:write";
    public const string ReadLeads = "leads:read";

    private const string Missing = $"{Header}: missing; send the API key (Nurture:Api:Key) in this header.";
    private const string Wrong = $"{Header}: not the API key.";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!Request.Headers.TryGetValue(Header, out var values)) return Task.FromResult(AuthenticateResult.NoResult());
        if (!settings.Accepts(values.FirstOrDefault())) return Task.FromResult(AuthenticateResult.Fail(Wrong));
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-client"), new Claim("scope", WriteEvents), new Claim("scope", ReadLeads)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = $"{SchemeName} header=\"{Header}\"";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = StatusCodes.Status401Unauthorized, Title = "Unauthorized", Detail = result.Failure?.Message ?? Missing },
        });
    }

    /// <summary>The scheme and the two policies; endpoints ask for a policy with RequireAuthorization.</summary>
    public static void AddTo(IServiceCollection services)
    {
        services.AddAuthentication(SchemeName).AddScheme<AuthenticationSchemeOptions, ApiKeyAuthentication>(SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(WriteEvents, p => p.AddAuthenticationSchemes(SchemeName).RequireAuthenticatedUser().RequireClaim("scope", WriteEvents))
            .AddPolicy(ReadLeads, p => p.AddAuthenticationSchemes(SchemeName).RequireAuthenticatedUser().RequireClaim("scope", ReadLeads));
    }
}
