using NormSharp.Fuzz;
using SharpFuzz;

// fuzz <target>                     run under afl-fuzz (fuzz/run.sh): one input per execution, from afl++
// fuzz seed <target> <directory>    write the target's starting corpus
// fuzz replay <target> <file>...    run saved inputs and print each outcome (triage of crashes)
string usage = $"usage: NormSharp.Fuzz <target> | seed <target> <directory> | replay <target> <file>...; targets: {string.Join(", ", FuzzTargets.All.Keys)}";
switch (args)
{
    case ["seed", string target, string directory]:
        Seeds.Write(target, directory);
        return 0;
    case ["replay", string target, .. var files] when files.Length > 0:
        int failures = 0;
        foreach (string file in files)
        {
            try
            {
                Console.WriteLine($"ok    {file}: {FuzzTargets.Run(target, File.ReadAllBytes(file))}");
            }
            catch (Exception e)
            {
                failures++;
                Console.WriteLine($"CRASH {file}: {e}");
            }
        }
        return failures == 0 ? 0 : 1;
    case [string target] when FuzzTargets.All.ContainsKey(target):
        Fuzzer.OutOfProcess.Run(stream =>
        {
            // One fuzzer per core: kernels run on the calling thread, so executions are deterministic and cheap. Set
            // here because instrumented code may only run once SharpFuzz has mapped afl's coverage memory.
            NormSharp.Parallelism.ThreadCount = 1;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            FuzzTargets.Run(target, buffer.ToArray());
        });
        return 0;
    default:
        Console.Error.WriteLine(usage);
        return 2;
}
