# syntax=docker/dockerfile:1
# The Nurture worker as a container: built with the .NET SDK, run on the ASP.NET runtime as the image's non-root user.
#   docker build -t nurture .        (docker-compose.yml builds it too)
# Tags are pinned to the SDK and runtime the tests ran on here; move them deliberately (README, "Production").
FROM mcr.microsoft.com/dotnet/sdk:10.0.401 AS build
WORKDIR /src
# Restore first, from the project files only, so a change to the code does not download the packages again.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Nurture.Contracts/Nurture.Contracts.csproj src/Nurture.Contracts/
COPY src/Nurture.Core/Nurture.Core.csproj src/Nurture.Core/
COPY src/Nurture.Worker/Nurture.Worker.csproj src/Nurture.Worker/
RUN dotnet restore src/Nurture.Worker/Nurture.Worker.csproj
COPY src/ src/
RUN dotnet publish src/Nurture.Worker/Nurture.Worker.csproj -c Release --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0.12 AS runtime
# The worker, its built-in email templates (/app/Templates) and its migrations (embedded) in /app; its data in /data:
# the SQLite file, the email pickup folder and generated key files when no server database is configured.
WORKDIR /app
COPY --from=build /app ./
WORKDIR /data
RUN chown "$APP_UID" /data
VOLUME /data
ENV ASPNETCORE_URLS=http://+:8080 \
    ASPNETCORE_HTTP_PORTS= \
    NURTURE_HEALTH_URL=http://localhost:8080 \
    DOTNET_gcServer=0
EXPOSE 8080
# The non-root user the .NET images ship (uid 1654).
USER $APP_UID
# The worker asks itself: no curl or wget in the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["dotnet", "/app/Nurture.Worker.dll", "health"]
ENTRYPOINT ["dotnet", "/app/Nurture.Worker.dll"]
CMD ["run"]
