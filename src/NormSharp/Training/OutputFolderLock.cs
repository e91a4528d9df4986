using System.Globalization;

namespace NormSharp.Training;

/// <summary>
/// Claims a folder for one training run, so that two runs pointed at the same output folder cannot overwrite each
/// other's checkpoints and logs: the second is refused with an <see cref="IOException"/> that names the first run's
/// process. The claim is an exclusive lock on <c>.normsharp.lock</c> in the folder (<see cref="FileShare.None"/>, an
/// advisory <c>flock</c> on Unix), held until <see cref="Dispose"/>; the operating system drops it when the process
/// ends in any way, so a run that crashed never leaves the folder locked. The owner's process id and start time are
/// written beside it, in <c>.normsharp.lock.owner</c>, for the refusal to name (the lock file itself cannot be read
/// while it is held).
/// </summary>
public sealed class OutputFolderLock : IDisposable
{
    /// <summary>The lock file's name inside the folder.</summary>
    public const string LockFileName = ".normsharp.lock";

    private readonly FileStream _lock;
    private readonly string _ownerFile;

    private OutputFolderLock(string directory, FileStream held, string ownerFile)
    {
        Directory = directory;
        _lock = held;
        _ownerFile = ownerFile;
    }

    /// <summary>The folder claimed.</summary>
    public string Directory { get; }

    /// <summary>Creates <paramref name="directory"/> if needed and claims it for this process.</summary>
    /// <exception cref="IOException">Another run holds the folder (the message names its process id), or the folder
    /// cannot be created or written.</exception>
    public static OutputFolderLock Acquire(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string full = Path.GetFullPath(directory);
        string lockPath = Path.Combine(full, LockFileName);
        string ownerFile = lockPath + ".owner";
        FileStream held;
        try
        {
            System.IO.Directory.CreateDirectory(full);
            held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException($"Output folder '{directory}' cannot be written ({e.Message.TrimEnd('.')}); choose another output folder.", e);
        }
        catch (IOException e) when (File.Exists(lockPath))
        {
            // Opening an existing lock file fails only while another handle holds it.
            string owner = File.Exists(ownerFile) ? File.ReadAllText(ownerFile).Trim() : "a process that has not yet written its id";
            throw new IOException($"Output folder '{directory}' is in use by another training run ({owner}); two runs writing one folder would overwrite each other's checkpoints. Wait for it to end, or choose another output folder.", e);
        }
        try
        {
            File.WriteAllText(ownerFile, string.Create(CultureInfo.InvariantCulture, $"PID {Environment.ProcessId}, started {DateTime.UtcNow:u}"));
        }
        catch
        {
            held.Dispose();
            throw;
        }
        return new OutputFolderLock(directory, held, ownerFile);
    }

    /// <summary>Releases the folder.</summary>
    public void Dispose()
    {
        try { File.Delete(_ownerFile); }
        catch (IOException) { } // the folder may have gone; the lock is released below either way
        _lock.Dispose();
    }
}
