using System.Buffers;
using System.IO.Compression;
using System.Net;
using Microsoft.Extensions.Logging;

namespace StableDiffusion.Hub;

/// <summary>
/// Downloads one blob into a temporary file: resumes with <c>Range</c> after a dropped connection, restarts from the first
/// byte when the server ignores the range, and checks the size and the ETag hash before the caller moves the file into place.
/// </summary>
internal sealed class BlobDownloader(HubTransport transport, HubOptions options, ILogger logger)
{
    private const int BufferSize = 1 << 20;
    private const long LogEvery = 64L << 20;

    /// <summary>Downloads <paramref name="metadata"/>'s content into the new file <paramref name="temporaryPath"/>.</summary>
    /// <param name="metadata">Where the content is, its size and ETag.</param>
    /// <param name="temporaryPath">The file to create; the caller deletes it on failure.</param>
    /// <param name="context">What is downloaded, for messages.</param>
    /// <param name="onBytes">Told of every block written (negative when a restart discards bytes).</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    /// <exception cref="HubIntegrityException">The content does not have the announced size or hash.</exception>
    /// <exception cref="HubUnavailableException">The connection kept dropping after the configured resumes.</exception>
    public async Task DownloadAsync(HubFileMetadata metadata, string temporaryPath, HubRequestContext context, Action<long> onBytes, CancellationToken cancellationToken)
    {
        using ContentHash? hash = ContentHash.For(metadata.Etag, metadata.Size);
        var file = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        await using (file.ConfigureAwait(false))
        {
            var transfer = new Transfer(file, hash, onBytes);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            try
            {
                int resumesLeft = options.MaxResumeAttempts;
                while (transfer.Written < metadata.Size)
                {
                    transfer.BytesThisAttempt = 0;
                    string? interruption = await TransferAsync(transfer, metadata, context, buffer, cancellationToken).ConfigureAwait(false);
                    if (interruption is null)
                    {
                        break;
                    }

                    // As in huggingface_hub, the resume budget is per stall: any progress refills it.
                    resumesLeft = transfer.BytesThisAttempt > 0 ? options.MaxResumeAttempts : resumesLeft;
                    if (resumesLeft-- == 0)
                    {
                        throw new HubUnavailableException(
                            $"The connection kept dropping while downloading {context.Describe()} from {HubTransport.Redact(metadata.Location)} " +
                            $"({transfer.Written} of {metadata.Size} bytes; {options.MaxResumeAttempts} resumes without progress; last: {interruption}). " +
                            "Check your network and try again.")
                        {
                            RepoId = context.RepoId,
                        };
                    }

                    HubLog.Resuming(logger, context.FilePath!, transfer.Written, interruption, resumesLeft);
                    await Task.Delay(options.ResumeDelay, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        if (hash?.Mismatch() is { } actual)
        {
            throw new HubIntegrityException(
                $"The download of {context.Describe()} is corrupt: its {hash.Algorithm} is {actual} but the Hub announced {metadata.Etag}. " +
                "The file was discarded; try again, and report it to the repository owner if it persists.")
            {
                RepoId = context.RepoId,
                FilePath = context.FilePath,
            };
        }
    }

    /// <summary>One request from the current offset; returns <see langword="null"/> when the file is complete, else why it stopped.</summary>
    private async Task<string?> TransferAsync(Transfer transfer, HubFileMetadata metadata, HubRequestContext context, byte[] buffer, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await transport.GetContentAsync(metadata.Location, transfer.Written, context, cancellationToken).ConfigureAwait(false);
        }
        catch (HubException e) when (transfer.Written > 0 && e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            transfer.Restart();
            return "the server refused the range request";
        }

        using (response)
        {
            long start = response.StatusCode == HttpStatusCode.PartialContent ? response.Content.Headers.ContentRange?.From ?? -1 : 0;
            if (start != transfer.Written)
            {
                // A 200 answer to a range request carries the file from its first byte: start over (as huggingface_hub does).
                HubLog.RestartingFromZero(logger, context.FilePath!);
                transfer.Restart();
                if (start != 0)
                {
                    return "the server answered with a range that was not asked for";
                }
            }

            bool encoded = response.Content.Headers.ContentEncoding.Any(e => !e.Equals("identity", StringComparison.OrdinalIgnoreCase));
            string? interruption = await CopyBodyAsync(response, encoded, transfer, metadata, context, buffer, cancellationToken).ConfigureAwait(false);
            if (interruption is not null && encoded)
            {
                // Offsets in a compressed body do not map to file offsets: only a full restart is safe.
                transfer.Restart();
            }

            return interruption;
        }
    }

    private async Task<string?> CopyBodyAsync(
        HttpResponseMessage response, bool encoded, Transfer transfer, HubFileMetadata metadata, HubRequestContext context, byte[] buffer, CancellationToken cancellationToken)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long nextLog = (transfer.Written / LogEvery + 1) * LogEvery;
        try
        {
            Stream body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            if (encoded)
            {
                body = Decode(body, response.Content.Headers.ContentEncoding.Last());
            }

            await using (body.ConfigureAwait(false))
            {
                while (true)
                {
                    // A stalled connection counts as dropped after DownloadTimeout without a byte.
                    idle.CancelAfter(options.DownloadTimeout);
                    int read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), idle.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return transfer.Written == metadata.Size ? null : $"the body ended after {transfer.Written} of {metadata.Size} bytes";
                    }

                    if (transfer.Written + read > metadata.Size)
                    {
                        throw new HubIntegrityException(
                            $"The download of {context.Describe()} is longer than the {metadata.Size} bytes the Hub announced. The file was discarded.")
                        {
                            RepoId = context.RepoId,
                            FilePath = context.FilePath,
                        };
                    }

                    await transfer.AppendAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    if (transfer.Written >= nextLog)
                    {
                        HubLog.FileProgress(logger, context.FilePath!, transfer.Written, metadata.Size);
                        nextLog += LogEvery;
                    }
                }
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is HttpRequestException or IOException or OperationCanceledException or InvalidDataException)
        {
            return e is OperationCanceledException ? $"no data for {options.DownloadTimeout.TotalSeconds:0.###} s" : e.Message;
        }
    }

    private static Stream Decode(Stream body, string encoding) => encoding.ToUpperInvariant() switch
    {
        "GZIP" or "X-GZIP" => new GZipStream(body, CompressionMode.Decompress),
        "DEFLATE" => new ZLibStream(body, CompressionMode.Decompress),
        "BR" => new BrotliStream(body, CompressionMode.Decompress),
        _ => throw new HubException($"The server sent content encoded as '{encoding}', which cannot be decoded."),
    };

    /// <summary>The temporary file, its hash and the byte count of one download.</summary>
    private sealed class Transfer(FileStream file, ContentHash? hash, Action<long> onBytes)
    {
        public long Written { get; private set; }

        public long BytesThisAttempt { get; set; }

        public async ValueTask AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            await file.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            hash?.Append(data.Span);
            Written += data.Length;
            BytesThisAttempt += data.Length;
            onBytes(data.Length);
        }

        /// <summary>Discards what was written and starts over from the first byte.</summary>
        public void Restart()
        {
            onBytes(-Written);
            Written = 0;
            file.SetLength(0);
            file.Position = 0;
            hash?.Reset();
        }
    }
}
