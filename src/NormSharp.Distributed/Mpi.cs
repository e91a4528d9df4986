using System.Runtime.InteropServices;

namespace NormSharp.Distributed;

/// <summary>
/// The few MPI calls NormSharp needs, bound at run time from Open MPI's <c>libmpi.so</c> (nothing is linked at build
/// time, so a machine without MPI builds and runs single-process). Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT,
/// MPI_SUM, ...) are the addresses of exported globals (<c>ompi_mpi_comm_world</c>, ...), which is what its mpi.h
/// macros expand to; an MPI_Request is a pointer and MPI_STATUS_IGNORE is null. Only the non-blocking collectives
/// (MPI-3) are bound: the process group waits for them itself, so that it can give up with an error. The library is
/// opened RTLD_GLOBAL: Open MPI's plugins (mca_*.so) resolve their symbols against it.
/// </summary>
internal static unsafe class Mpi
{
    public const int ThreadSerialized = 2;
    public static readonly nint InPlace = 1; // MPI_IN_PLACE in Open MPI's mpi.h

    private static readonly string[] s_names = { "libmpi.so.40", "libmpi.so" };
    private static nint s_library;

    public static nint CommWorld, Float, Double, Byte, Sum;

    public static delegate* unmanaged<int*, nint, int, int*, int> InitThread;
    public static delegate* unmanaged<int> Finalize;
    public static delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public static delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int> Iallreduce;
    public static delegate* unmanaged<nint, int, nint, int, nint, nint*, int> Ibcast;
    public static delegate* unmanaged<nint, int, nint, nint, int, nint, nint, nint*, int> Iallgather;
    public static delegate* unmanaged<nint, nint*, int> Ibarrier;
    public static delegate* unmanaged<nint*, int*, nint, int> Test;
    public static delegate* unmanaged<nint, int, int> Abort;

    /// <summary>Opens libmpi once and binds the calls; throws with what to install when it is missing.</summary>
    public static void Load()
    {
        if (s_library != 0) return;
        nint library = Open(s_names);
        nint Export(string name) => NativeLibrary.TryGetExport(library, name, out nint address) ? address
            : throw new EntryPointNotFoundException($"NormSharp.Distributed: libmpi has no '{name}'; NormSharp.Distributed needs Open MPI 4 or later (its handles are the addresses of ompi_mpi_* globals).");
        CommWorld = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Double = Export("ompi_mpi_double");
        Byte = Export("ompi_mpi_byte");
        Sum = Export("ompi_mpi_op_sum");
        InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Export("MPI_Init_thread");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        Iallreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce");
        Ibcast = (delegate* unmanaged<nint, int, nint, int, nint, nint*, int>)Export("MPI_Ibcast");
        Iallgather = (delegate* unmanaged<nint, int, nint, nint, int, nint, nint, nint*, int>)Export("MPI_Iallgather");
        Ibarrier = (delegate* unmanaged<nint, nint*, int>)Export("MPI_Ibarrier");
        Test = (delegate* unmanaged<nint*, int*, nint, int>)Export("MPI_Test");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        s_library = library;
    }

    /// <summary>dlopen's the first of <paramref name="names"/> that loads, RTLD_GLOBAL; throws with what to install
    /// when none does.</summary>
    internal static nint Open(string[] names)
    {
        string? error = null;
        foreach (string name in names)
        {
            nint library = dlopen(name, RtldNow | RtldGlobal);
            if (library != 0) return library;
            error ??= Marshal.PtrToStringUTF8(dlerror());
        }
        throw new DllNotFoundException($"NormSharp.Distributed: cannot load Open MPI's libmpi.so (tried {string.Join(", ", names)}: {error ?? "not found"}); install it with 'apt-get install openmpi-bin libopenmpi-dev' (Debian/Ubuntu) and start the processes with mpirun.");
    }

    /// <summary>Throws unless an MPI call returned MPI_SUCCESS (0). With MPI's default error handler a failing call
    /// aborts the job before returning, so this is the second line of defence.</summary>
    public static void Check(int code, string call)
    {
        if (code != 0) throw new DistributedException($"{call} failed with MPI error code {code}.");
    }

    private const int RtldNow = 0x2, RtldGlobal = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern nint dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    private static extern nint dlerror();
}

/// <summary>A failure of the process group: an MPI error, or other processes that stopped answering.</summary>
public sealed class DistributedException(string message) : Exception(message);
