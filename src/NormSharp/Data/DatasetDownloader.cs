using System.Security.Cryptography;

namespace NormSharp.Data;

/// <summary>Downloads files into a folder with checksum verification and atomic placement: each file is written to a
/// temporary name in the target folder, its MD5 checked, and only then renamed to its final name, so an interrupted
/// or corrupt download never leaves a file that looks complete.</summary>
internal static class DatasetDownloader
{
    /// <summary>Downloads <paramref name="fileName"/> from the first of <paramref name="mirrors"/> that serves it
    /// with MD5 <paramref name="md5"/> into <paramref name="directory"/>; returns the final path.</summary>
    /// <exception cref="IOException">No mirror served the file with the right checksum; the message lists why each failed.</exception>
    public static string Download(IReadOnlyList<string> mirrors, string fileName, string md5, string directory, Func<Uri, Stream> openUrl, Action<string>? log)
    {
        Directory.CreateDirectory(directory);
        string target = Path.Combine(directory, fileName);
        var failures = new List<string>();
        foreach (string mirror in mirrors)
        {
            var url = new Uri(mirror + fileName);
            string temporary = Path.Combine(directory, $".{fileName}.{Guid.NewGuid():N}.part");
            try
            {
                log?.Invoke($"downloading {url}");
                string actual;
                using (Stream source = openUrl(url))
                using (FileStream file = File.Create(temporary))
                using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.MD5))
                {
                    byte[] buffer = new byte[81920];
                    int n;
                    while ((n = source.Read(buffer)) > 0)
                    {
                        hash.AppendData(buffer.AsSpan(0, n));
                        file.Write(buffer.AsSpan(0, n));
                    }
                    file.Flush(flushToDisk: true);
                    actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                }
                if (!string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase))
                {
                    failures.Add($"{url}: checksum mismatch (MD5 {actual}, expected {md5})");
                    continue;
                }
                File.Move(temporary, target, overwrite: true);
                return target;
            }
            catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or UnauthorizedAccessException)
            {
                failures.Add($"{url}: {e.Message}");
            }
            finally
            {
                if (File.Exists(temporary)) File.Delete(temporary);
            }
        }
        throw new IOException($"Could not download {fileName}: {string.Join("; ", failures)}.");
    }

    // One client for the process (HttpClient is meant to be shared); each request carries its own time limit.
    private static readonly HttpClient Client = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>Opens URLs over HTTP, reading each whole response (at most a few tens of MB) within
    /// <paramref name="timeout"/> so a stalled transfer fails instead of hanging.</summary>
    public static Func<Uri, Stream> HttpOpener(TimeSpan timeout) => url =>
    {
        using var deadline = new CancellationTokenSource(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        HttpResponseMessage response = Client.Send(request, HttpCompletionOption.ResponseContentRead, deadline.Token);
        response.EnsureSuccessStatusCode();
        return response.Content.ReadAsStream();
    };
}
