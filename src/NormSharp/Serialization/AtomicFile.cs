namespace NormSharp.Serialization;

/// <summary>
/// Writes files so that a crash or kill at any moment leaves either the previous file or the complete new one, never
/// a half-written file: the content goes to a temporary file in the same folder, is flushed to disk, and then
/// replaces the target with a rename (atomic on the same file system).
/// </summary>
public static class AtomicFile
{
    /// <summary>Test seam: given the temporary file's path and stream, returns the stream to write to, or throws as
    /// opening it would. Tests simulate a full disk or a read-only folder with it, which a test running as root cannot
    /// get from permission bits. Async-local, so tests running in parallel do not see each other's.</summary>
    internal static readonly AsyncLocal<Func<string, Stream, Stream>?> Intercept = new();

    /// <summary>Writes <paramref name="path"/> atomically with the content produced by <paramref name="write"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Stream stream = Intercept.Value?.Invoke(temporary, file) ?? file;
                write(stream);
                stream.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes text atomically (UTF-8, no byte-order mark).</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
            writer.Write(text);
        });

    /// <summary>Writes bytes atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, stream => stream.Write(copy));
    }
}
