using System.Net.Mime;
using System.Text;
using System.Text.Json;
using MassTransit;
using MassTransit.Context;
using MassTransit.Serialization;
using Nurture.Contracts;

namespace Nurture.Worker.Messaging;

/// <summary>A message on the event queue that is not a valid event, with the reason naming the field. Its consumer records it and fails it into the error queue.</summary>
public sealed record UnreadableEvent(string Reason, string Payload);

/// <summary>
/// Reads the documented plain JSON form (docs/events.md) that publishers which are not .NET send to the
/// nurture.events exchange: no MassTransit envelope, the "type" field names the event. The event is parsed once
/// here, with the same rules as everywhere else (EventJson), and offered only to the consumer of its type.
/// Anything that does not parse becomes an <see cref="UnreadableEvent"/> carrying the reason and the raw text.
/// </summary>
public sealed class PlainJsonEvents : ISerializerFactory, IMessageDeserializer
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public ContentType ContentType => SystemTextJsonRawMessageSerializer.JsonContentType;

    public IMessageSerializer CreateSerializer() => new SystemTextJsonRawMessageSerializer();

    public IMessageDeserializer CreateDeserializer() => this;

    public void Probe(ProbeContext context) => context.CreateScope("nurture-plain-json").Add("contentType", ContentType.MediaType);

    public ConsumeContext Deserialize(ReceiveContext receiveContext) =>
        new BodyConsumeContext(receiveContext, Deserialize(receiveContext.Body, receiveContext.TransportHeaders, receiveContext.InputAddress));

    public SerializerContext Deserialize(MessageBody body, Headers headers, Uri? destinationAddress = null)
    {
        var message = Read(body.GetBytes());
        return new ParsedEventContext(message, ContentType, headers, destinationAddress);
    }

    public MessageBody GetMessageBody(string text) => new StringMessageBody(text);

    /// <summary>The event, or an <see cref="UnreadableEvent"/> saying which field is wrong and why (EventJson's reader of every way in).</summary>
    public static object Read(byte[] bytes)
    {
        if (EventJson.TryParseIncoming(bytes, out var e, out var error)) return e;
        string payload;
        try
        {
            payload = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            payload = Convert.ToBase64String(bytes);
        }
        return new UnreadableEvent(error, payload);
    }

    /// <summary>Offers the parsed object as its own type and its base types (MassTransit's message type URNs), nothing else.</summary>
    private sealed class ParsedEventContext(object message, ContentType contentType, Headers headers, Uri? destinationAddress)
        : SystemTextJsonRawSerializerContext(SystemTextJsonMessageSerializer.Instance, EventJson.Options, contentType,
            new RawMessageContext(headers, destinationAddress, RawSerializerOptions.Default), UrnsOf(message.GetType()), RawSerializerOptions.Default,
            JsonSerializer.SerializeToElement(message, message.GetType(), EventJson.Options))
    {
        public override bool TryGetMessage<T>(out T? result)
            where T : class
        {
            result = IsSupportedMessageType<T>() ? message as T : null;
            return result is not null;
        }

        public override bool TryGetMessage(Type messageType, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out object? result)
        {
            result = IsSupportedMessageType(messageType) && messageType.IsInstanceOfType(message) ? message : null;
            return result is not null;
        }

        private static string[] UrnsOf(Type type)
        {
            var urns = new List<string>();
            for (var t = type; t is not null && t != typeof(object); t = t.BaseType) urns.Add(MessageUrn.ForTypeString(t));
            return [.. urns];
        }
    }
}
