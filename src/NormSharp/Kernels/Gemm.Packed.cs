using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// The blocked float32 path (Goto & van de Geijn 2008, "Anatomy of high-performance matrix multiplication"; the BLIS
// loop nest). The depth k is cut into blocks of at most DepthBlock; op(A) is packed into panels of TileRows rows and
// op(B) into panels of TileCols columns, both k-major per depth block, so the register tile reads them sequentially
// whatever the transposes were. The tile keeps one A panel (12×kc floats, 24 KiB at kc = 512) in L1 while it sweeps
// across up to SweepColumnPanels B panels, which the hardware prefetcher streams in from L2/L3, then moves to the next
// A panel. The 12×32 tile and DepthBlock were measured on an AMD EPYC Zen 4 (32 KiB L1d, 1 MiB L2 per core, 32 MiB L3);
// SweepColumnPanels, PerThreadSharedFloats, the per-thread packing buffer and the row/column split on a Zen 5 EPYC
// (48 KiB L1d, 1 MiB L2 per core); each says how.
//
// One operand is "own", the other "shared" (ThreadsOwnRows: rows of A are own when that shares C out more evenly). A
// small shared operand (PerThreadSharedFloats) is packed whole by every thread into a buffer it keeps, and each thread
// owns a contiguous range of own panels, which it packs a depth block at a time and multiplies: one fork-join, and
// each core reads and writes panels in its own caches rather than the other core's. A larger shared operand is packed
// once, all depth blocks, by all threads; then, per depth block, the own panels are packed by all threads, and the
// block is computed as column sweeps × one row part per thread, which the threads take one at a time. Threads that
// own fixed halves wait for the slower one: on 2 threads of a quiet Zen 5 (load about 1), 2048³ NN with 256-bit
// vectors took 108 ms with fixed halves against 99 ms in parts taken in turn (90 and 92 ms with the other processes
// held off by real-time priority; same-process A/B).
// k is never split: a tile's value depends only on its panels and on the depth blocks, which depend on k alone,
// so C is bitwise the same for any thread count.
internal static partial class Gemm
{
    /// <summary>Largest depth block kc: a 12×512 A panel (24 KiB) stays in L1 (32 KiB); measured best of 128–1024.</summary>
    internal const int DepthBlock = 512;

    /// <summary>Column panels the tile sweeps per A panel (256 columns): their kc×256 block (512 KiB at kc = 512) stays
    /// in L2 (1 MiB) while every A panel passes over it. Measured on a Zen 5 EPYC, 2048³ on one thread: sweeping 2,048
    /// columns (B streamed from L3) was 10–20 % slower with 256- and 128-bit vectors and no faster with 512-bit.</summary>
    private const int SweepColumnPanels = 8;

    /// <summary>Upper bound, in floats, of the shared packed operand (16 MiB: all of a 2048×2048 operand); larger
    /// operands are packed and multiplied in equal slabs.</summary>
    private const int SharedPackFloats = 1 << 22;

    /// <summary>Largest shared operand, in floats (1 MiB), that every thread packs for itself. Measured on 2 threads (Zen 5,
    /// other processes held off): dense 128×128×1152 NT 0.335 → 0.28 ms with 256-bit vectors, 0.20 → 0.16 ms with
    /// 512-bit; 128×1152×128 and 512³ 2–10 % faster. The second packing is cheap next to the multiply-adds each
    /// packed float feeds on every thread (64 in that dense product: its own 64 columns).</summary>
    private const int PerThreadSharedFloats = 1 << 18;

    /// <summary>Upper bound, in floats, of one thread's packed panels for one depth block (4 MiB).</summary>
    private const int OwnPackFloats = 1 << 20;

    /// <summary>Upper bound, in floats, of the own operand packed for one depth block when the shared operand is packed
    /// once for all threads (8 MiB: all 2,048 rows of a 2048³ product at kc = 512).</summary>
    private const int OwnBlockFloats = 1 << 21;

    /// <summary>Floats of panels that one thread packs at a time (256 KiB).</summary>
    private const int PackChunkFloats = 1 << 16;

    /// <summary>Floats of slack in each rented buffer so its start can be moved to a 64-byte boundary.</summary>
    internal const int AlignmentSlack = 16;

    /// <summary>Parallelism.For wants work per item in units where 32,768 is worth a thread: one unit is 64
    /// multiply-adds, so a thread gets at least 2M of them (about 20 µs), well above a fork-join's cost.</summary>
    private const int MultiplyAddsPerWorkUnit = 64;

    private static unsafe void MultiplyPacked(GemmKernelPath path, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        // Only the last column panel is padded, so a narrow C wastes most of each tile: compute Cᵀ = op(B)ᵀ·op(A)ᵀ
        // instead when that pads less. Products commute exactly, so both give the same bits.
        var gemm = PaddedWidth(n) * (long)m > PaddedWidth(m) * (long)n * 5 / 4
            ? new PackedGemm(path, !transB, !transA, n, m, k, b, ldb, a, lda, c, ldc, accumulate, transposedC: true)
            : new PackedGemm(path, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, transposedC: false);
        gemm.Run();
    }

    /// <summary>Panels per part when <paramref name="total"/> items, <paramref name="width"/> to a panel, are cut
    /// into equal parts of at most <paramref name="maxPanels"/> panels (at least one).</summary>
    internal static int EqualParts(int total, int width, int maxPanels)
    {
        int panels = (total + width - 1) / width, parts = (panels + Math.Max(1, maxPanels) - 1) / Math.Max(1, maxPanels);
        return (panels + parts - 1) / parts;
    }

    /// <summary>How many parts of at most <paramref name="maxPanels"/> panels (at least one) <paramref name="panels"/>
    /// panels are cut into.</summary>
    private static int EqualPartsCount(int panels, int maxPanels) => (panels + Math.Max(1, maxPanels) - 1) / Math.Max(1, maxPanels);

    private static long PaddedWidth(int columns) => (columns + TileCols - 1) / TileCols * (long)TileCols;

    internal static unsafe float* AlignTo64(float* p) => (float*)(((nuint)p + 63) & ~(nuint)63);

    /// <summary>One multiply C = op(A)·op(B) (+ C), where C's element (i, j) is at c[i·ldc + j], or at c[j·ldc + i]
    /// when <paramref name="transposedC"/> is set; its methods are the bodies the threads run. A struct, and the
    /// loop bodies structs that hold a copy of it, so that a multiply allocates nothing.</summary>
    private unsafe struct PackedGemm(GemmKernelPath path, bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, bool transposedC)
    {
        // Equal depth blocks (k = 1152 gives 3 × 384 rather than 2 × 512 + 128); they depend on k only.
        private readonly int _depthMax = EqualParts(k, 1, DepthBlock);

        // Threads own row panels and share the column panels of op(B), or the other way round.
        private readonly bool _threadsOwnRows = ThreadsOwnRows(m, n);

        // The slab of the shared operand packed now: its first row (or column), count, and packed panels.
        private int _sharedStart, _sharedCount;
        private float* _shared;

        // With a shared operand packed once for all threads, the block computed now: own panels [_ownStart, _ownStart + _ownCount) of the own operand, packed
        // for depth block [_depthStart, _depthStart + _depth) at _own, cut into _rowParts row ranges per sweep.
        private int _ownStart, _ownCount, _depthStart, _depth, _rowParts;
        private float* _own;

        /// <summary>Whether threads should own row panels rather than column panels: the split whose busiest thread
        /// computes the smaller share of C when that share is over 3 % smaller, else the one with more panels. On 2
        /// threads, 128×128×1152 has 11 row panels of 12 (5 and 6 panels: 60 and 68 rows) but 4 column panels of 32
        /// (64 and 64 columns); owning columns cut the busier thread's CPU time 5–9 % with 256-bit vectors and 4–13 %
        /// with 512-bit (Zen 5, under load; same-process A/B). 2048³ (1,020 and 1,028 rows, 0.4 % apart) keeps rows,
        /// with which it measured faster. Either split gives the same bits: tiles do not depend on who owns them.</summary>
        private static bool ThreadsOwnRows(int m, int n)
        {
            int rowPanels = (m + TileRows - 1) / TileRows, columnPanels = (n + TileCols - 1) / TileCols;
            int threads = Parallelism.ThreadCount;
            long rowLoad = BusiestChunk(m, TileRows, threads) * (long)n, columnLoad = BusiestChunk(n, TileCols, threads) * (long)m;
            if (columnLoad * 33 < rowLoad * 32) return false;
            if (rowLoad * 33 < columnLoad * 32) return true;
            return rowPanels > columnPanels;
        }

        /// <summary>Rows (or columns) in the largest of the chunks that <see cref="Parallelism.Chunk"/> cuts
        /// <paramref name="total"/> items, <paramref name="width"/> to a panel, into for <paramref name="threads"/>
        /// threads.</summary>
        private static int BusiestChunk(int total, int width, int threads)
        {
            int panels = (total + width - 1) / width, chunks = Math.Min(threads, panels), busiest = 0;
            for (int chunk = 0; chunk < chunks; chunk++)
            {
                var (start, end) = Parallelism.Chunk(panels, chunks, chunk);
                busiest = Math.Max(busiest, Math.Min(end * width, total) - start * width);
            }
            return busiest;
        }

        private readonly int SharedWidth => _threadsOwnRows ? TileCols : TileRows;
        private readonly int OwnWidth => _threadsOwnRows ? TileRows : TileCols;

        public void Run()
        {
            int sharedTotal = _threadsOwnRows ? n : m, ownTotal = _threadsOwnRows ? m : n;
            int ownPanels = (ownTotal + OwnWidth - 1) / OwnWidth;
            if ((long)(sharedTotal + SharedWidth - 1) / SharedWidth * SharedWidth * k <= PerThreadSharedFloats)
            {
                (_sharedStart, _sharedCount) = (0, sharedTotal);
                Parallelism.For(ownPanels, new ComputeOwnChunks(this), workPerItem: (long)OwnWidth * _sharedCount * k / MultiplyAddsPerWorkUnit);
                return;
            }
            int slab = Math.Min(sharedTotal, EqualParts(sharedTotal, SharedWidth, SharedPackFloats / (SharedWidth * k)) * SharedWidth);
            int ownSlab = EqualParts(ownPanels, 1, OwnBlockFloats / (OwnWidth * _depthMax));
            // Per sweep, the block's rows are cut into one part per thread: with the parts of a sweep taken one after
            // the other, the threads share its column panels the way they would with fixed halves of the rows.
            int blockRows = _threadsOwnRows ? Math.Min(ownSlab * TileRows, m) : slab;
            _rowParts = Math.Min(Parallelism.ThreadCount, (blockRows + TileRows - 1) / TileRows);
            float[] buffer = BufferPool<float>.Shared.Rent((slab + SharedWidth - 1) / SharedWidth * SharedWidth * k + AlignmentSlack);
            float[] ownBuffer = BufferPool<float>.Shared.Rent(ownSlab * OwnWidth * _depthMax + AlignmentSlack);
            fixed (float* raw = buffer, ownRaw = ownBuffer)
            {
                _shared = AlignTo64(raw);
                _own = AlignTo64(ownRaw);
                for (_sharedStart = 0; _sharedStart < sharedTotal; _sharedStart += slab)
                {
                    _sharedCount = Math.Min(slab, sharedTotal - _sharedStart);
                    int sharedPanels = (_sharedCount + SharedWidth - 1) / SharedWidth;
                    Parallelism.ForEachChunk(sharedPanels, PackChunks(sharedPanels, SharedWidth * k), new PackSharedChunks(this));
                    for (_ownStart = 0; _ownStart < ownPanels; _ownStart += ownSlab)
                    {
                        _ownCount = Math.Min(ownSlab, ownPanels - _ownStart);
                        for (_depthStart = 0; _depthStart < k; _depthStart += _depthMax)
                        {
                            _depth = Math.Min(_depthMax, k - _depthStart);
                            Parallelism.ForEachChunk(_ownCount, PackChunks(_ownCount, OwnWidth * _depth), new PackOwnChunks(this));
                            int parts = BlockSweeps * _rowParts;
                            Parallelism.ForEachChunk(parts, parts, new ComputeBlockChunks(this));
                        }
                    }
                }
            }
            BufferPool<float>.Shared.Return(ownBuffer);
            BufferPool<float>.Shared.Return(buffer);
        }

        /// <summary>Chunks of at most <see cref="PackChunkFloats"/> that the packing of <paramref name="panels"/> panels
        /// of <paramref name="panelFloats"/> floats is cut into.</summary>
        private static int PackChunks(int panels, int panelFloats) => EqualPartsCount(panels, PackChunkFloats / panelFloats);

        /// <summary>Column sweeps (<see cref="SweepColumnPanels"/> column panels each) across the current block.</summary>
        private readonly int BlockSweeps
        {
            get
            {
                int columns = _threadsOwnRows ? _sharedCount : Math.Min((_ownStart + _ownCount) * TileCols, n) - _ownStart * TileCols;
                return EqualPartsCount((columns + TileCols - 1) / TileCols, SweepColumnPanels);
            }
        }

        private readonly struct PackOwnChunks(PackedGemm gemm) : IChunkBody
        {
            public void Run(int start, int end) => gemm.PackOwn(start, end);
        }

        private readonly struct ComputeBlockChunks(PackedGemm gemm) : IChunkBody
        {
            public void Run(int start, int end)
            {
                for (int part = start; part < end; part++) gemm.ComputeBlockPart(part);
            }
        }

        /// <summary>Packs own panels [start, end) of the current own slab for the current depth block.</summary>
        private readonly void PackOwn(int start, int end) =>
            PackPanels(_threadsOwnRows, (_ownStart + start) * OwnWidth, end - start, _threadsOwnRows ? m : n, _depthStart, _depth,
                _own + (nint)start * OwnWidth * _depth);

        /// <summary>Computes part <paramref name="part"/> of the current block (own slab × shared slab × depth block):
        /// column sweep part / <see cref="_rowParts"/>, over the row panels of chunk part % <see cref="_rowParts"/>.
        /// Consecutive parts share a sweep, so the threads work on the same shared panels at the same time.</summary>
        private readonly void ComputeBlockPart(int part)
        {
            int ownFirst = _ownStart * OwnWidth, ownCount = Math.Min((_ownStart + _ownCount) * OwnWidth, _threadsOwnRows ? m : n) - ownFirst;
            float* shared = _shared + (nint)_depthStart * ((_sharedCount + SharedWidth - 1) / SharedWidth) * SharedWidth;
            // C's rows and columns in this block, and their packed panels.
            int rowFirst = _threadsOwnRows ? ownFirst : _sharedStart, rowCount = _threadsOwnRows ? ownCount : _sharedCount;
            int columnFirst = _threadsOwnRows ? _sharedStart : ownFirst, columnCount = _threadsOwnRows ? _sharedCount : ownCount;
            float* rowPanels = _threadsOwnRows ? _own : shared, columnPanels = _threadsOwnRows ? shared : _own;
            var (firstPanel, endPanel) = Parallelism.Chunk((rowCount + TileRows - 1) / TileRows, _rowParts, part % _rowParts);
            int row = firstPanel * TileRows, column = part / _rowParts * SweepColumnPanels * TileCols;
            ComputeTiles(rowFirst + row, Math.Min(endPanel * TileRows, rowCount) - row, rowPanels + (nint)row * _depth,
                columnFirst + column, Math.Min(column + SweepColumnPanels * TileCols, columnCount) - column, columnPanels + (nint)column * _depth,
                _depthStart, _depth);
        }

        private readonly struct PackSharedChunks(PackedGemm gemm) : IChunkBody
        {
            public void Run(int start, int end) => gemm.PackShared(start, end);
        }

        private readonly struct ComputeOwnChunks(PackedGemm gemm) : IChunkBody
        {
            public void Run(int start, int end) => gemm.ComputeOwn(start, end);
        }

        /// <summary>Packs shared panels [start, end) of the current slab for every depth block. The block starting at
        /// depth d holds its panels from offset d·(slab panels)·width.</summary>
        private readonly void PackShared(int start, int end)
        {
            int panels = (_sharedCount + SharedWidth - 1) / SharedWidth;
            for (int depthStart = 0; depthStart < k; depthStart += _depthMax)
            {
                int depth = Math.Min(_depthMax, k - depthStart);
                float* block = _shared + (nint)depthStart * panels * SharedWidth;
                PackPanels(!_threadsOwnRows, _sharedStart + start * SharedWidth, end - start, _sharedStart + _sharedCount,
                    depthStart, depth, block + (nint)start * SharedWidth * depth);
            }
        }

        /// <summary>This thread's buffer for a small shared operand packed whole (<see cref="PerThreadSharedFloats"/>,
        /// 1 MiB), kept for the thread's life. Rented from the shared pool instead, the two threads' buffers changed
        /// hands between calls, and every cache line of the packed operand was first fetched from the other core:
        /// 2 threads, dense 128×128×1152 NT 0.19 → 0.145 ms with 512-bit vectors, 0.30 → 0.26 ms with 256-bit
        /// (Zen 5, real-time priority, same-process A/B).</summary>
        [ThreadStatic] private static float[]? t_sharedPanels;

        /// <summary>Computes every tile in own panels [start, end) × the whole (small) shared operand, first packing the
        /// shared operand into <see cref="t_sharedPanels"/>.</summary>
        private readonly void ComputeOwn(int start, int end)
        {
            int sharedPanels = (_sharedCount + SharedWidth - 1) / SharedWidth;
            fixed (float* raw = t_sharedPanels ??= new float[PerThreadSharedFloats + AlignmentSlack])
            {
                PackedGemm own = this;
                own._shared = AlignTo64(raw);
                own.PackShared(0, sharedPanels);
                own.ComputeOwnTiles(start, end);
            }
        }

        /// <summary>Computes every tile in own panels [start, end) × the shared slab, packing the own panels a group
        /// and a depth block at a time into a buffer of this thread's.</summary>
        private readonly void ComputeOwnTiles(int start, int end)
        {
            int groupPanels = EqualParts(end - start, 1, OwnPackFloats / (OwnWidth * _depthMax));
            int ownLimit = _threadsOwnRows ? m : n;
            float[] buffer = BufferPool<float>.Shared.Rent(Math.Min(groupPanels, end - start) * OwnWidth * _depthMax + AlignmentSlack);
            fixed (float* raw = buffer)
            {
                float* own = AlignTo64(raw);
                int sharedPanels = (_sharedCount + SharedWidth - 1) / SharedWidth;
                for (int group = start; group < end; group += groupPanels)
                {
                    int groupEnd = Math.Min(end, group + groupPanels);
                    int first = group * OwnWidth, count = Math.Min(groupEnd * OwnWidth, ownLimit) - first;
                    for (int depthStart = 0; depthStart < k; depthStart += _depthMax)
                    {
                        int depth = Math.Min(_depthMax, k - depthStart);
                        PackPanels(_threadsOwnRows, first, groupEnd - group, ownLimit, depthStart, depth, own);
                        float* shared = _shared + (nint)depthStart * sharedPanels * SharedWidth;
                        if (_threadsOwnRows)
                            ComputeTiles(first, count, own, _sharedStart, _sharedCount, shared, depthStart, depth);
                        else
                            ComputeTiles(_sharedStart, _sharedCount, shared, first, count, own, depthStart, depth);
                    }
                }
            }
            BufferPool<float>.Shared.Return(buffer);
        }

        /// <summary>Packs <paramref name="panels"/> consecutive panels of op(A) rows (<paramref name="rowsOfA"/>, 12 per
        /// panel) or op(B) columns (32 per panel) from <paramref name="first"/>, ending at <paramref name="limit"/>, over
        /// one depth block, each k-major: element (i, p) at p·12 + i, or (p, j) at p·32 + j. Columns past the end are
        /// zeroed (the tile computes them); rows past the end are left unset (the kernel for a short panel does not
        /// read them).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void PackPanels(bool rowsOfA, int first, int panels, int limit, int depthStart, int depth, float* dst)
        {
            int width = rowsOfA ? TileRows : TileCols, count = Math.Min(limit - first, panels * width);
            int fullPanels = count / width, tail = count - fullPanels * width;
            float* tailPanel = dst + (nint)fullPanels * width * depth;
            if (!rowsOfA && tail > 0) new Span<float>(tailPanel, width * depth).Clear();
            float* stored = rowsOfA ? a : b;
            int stride = rowsOfA ? lda : ldb;
            // Stored contiguously along the panels' width (op(A) = Aᵀ, or op(B) = B): each depth step reads one run
            // of the stored row and deals it out to the panels.
            if (rowsOfA ? transA : !transB)
            {
                float* src = stored + (nint)depthStart * stride + first;
                for (int p = 0; p < depth; p++, src += stride)
                {
                    float* d = dst + p * width;
                    for (int q = 0; q < fullPanels; q++, d += width * depth)
                    {
                        if (rowsOfA) Unsafe.CopyBlockUnaligned(d, src + q * width, TileRows * sizeof(float));
                        else Unsafe.CopyBlockUnaligned(d, src + q * width, TileCols * sizeof(float));
                    }
                    if (tail > 0) new ReadOnlySpan<float>(src + fullPanels * width, tail).CopyTo(new Span<float>(tailPanel + p * width, tail));
                }
                return;
            }
            // Stored the other way: each stored row becomes one row (or column) of a panel.
            for (int q = 0; q <= fullPanels && q * width < count; q++)
                Transpose(stored + (nint)(first + q * width) * stride + depthStart, stride, Math.Min(width, count - q * width), depth,
                    dst + (nint)q * width * depth, width);
        }

        /// <summary>Runs the register tile over C rows [firstRow, firstRow + rowCount) × columns
        /// [firstColumn, firstColumn + columnCount), whose packed panels for this depth block start at
        /// <paramref name="panelsA"/> and <paramref name="panelsB"/>.</summary>
        // SkipLocalsInit: the scratch tile is written before it is read (its unused lanes only feed discarded results),
        // and zeroing it on every call showed up as 8 % of a training step's samples.
        [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
        private readonly void ComputeTiles(int firstRow, int rowCount, float* panelsA, int firstColumn, int columnCount, float* panelsB,
            int depthStart, int depth)
        {
            // The first depth block overwrites C unless accumulating; later blocks add to it.
            bool loadC = accumulate || depthStart > 0;
            float* scratch = stackalloc float[TileRows * TileCols];
            int rowPanels = (rowCount + TileRows - 1) / TileRows, columnPanels = (columnCount + TileCols - 1) / TileCols;
            for (int group = 0; group < columnPanels; group += SweepColumnPanels)
            {
                int groupEnd = Math.Min(columnPanels, group + SweepColumnPanels);
                for (int r = 0; r < rowPanels; r++)
                {
                    int rows = Math.Min(TileRows, rowCount - r * TileRows);
                    float* panelA = panelsA + (nint)r * TileRows * depth;
                    for (int q = group; q < groupEnd; q++)
                    {
                        int columns = Math.Min(TileCols, columnCount - q * TileCols);
                        float* panelB = panelsB + (nint)q * TileCols * depth;
                        int i = firstRow + r * TileRows, j = firstColumn + q * TileCols;
                        if (!transposedC && columns == TileCols)
                        {
                            Tile(path, rows, depth, panelA, panelB, c + (nint)i * ldc + j, ldc, loadC);
                            continue;
                        }
                        // Partial or transposed tiles run through a full-width scratch tile.
                        float* cTile = transposedC ? c + (nint)j * ldc + i : c + (nint)i * ldc + j;
                        if (loadC) CopyTile(cTile, scratch, rows, columns, toScratch: true);
                        Tile(path, rows, depth, panelA, panelB, scratch, TileCols, loadC);
                        CopyTile(cTile, scratch, rows, columns, toScratch: false);
                    }
                }
            }
        }

        /// <summary>Moves a rows × columns tile between C and the scratch tile (row stride 32).</summary>
        private readonly void CopyTile(float* cTile, float* scratch, int rows, int columns, bool toScratch)
        {
            if (transposedC)
            {
                if (toScratch) Transpose(cTile, ldc, columns, rows, scratch, TileCols);
                else Transpose(scratch, TileCols, rows, columns, cTile, ldc);
                return;
            }
            for (int i = 0; i < rows; i++)
            {
                var inC = new Span<float>(cTile + (nint)i * ldc, columns);
                var inScratch = new Span<float>(scratch + i * TileCols, columns);
                if (toScratch) inC.CopyTo(inScratch);
                else inScratch.CopyTo(inC);
            }
        }

        /// <summary>dst[p·dstStride + r] = src[r·srcStride + p] for r &lt; rows, p &lt; depth: eight rows × eight
        /// steps at a time where <see cref="BlockTranspose.EightByEight"/>, then four × four (packing both operands of
        /// the dense 128×128×1152 NT product was 12 % of its time with four × four alone).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Transpose(float* src, nint srcStride, int rows, int depth, float* dst, nint dstStride)
        {
            int r = 0;
            if (BlockTranspose.EightByEight)
                for (; r + 8 <= rows; r += 8)
                {
                    float* s = src + r * srcStride;
                    int p = 0;
                    for (; p + 8 <= depth; p += 8)
                        BlockTranspose.Store8x8(Vector256.Load(s + p), Vector256.Load(s + srcStride + p), Vector256.Load(s + 2 * srcStride + p),
                            Vector256.Load(s + 3 * srcStride + p), Vector256.Load(s + 4 * srcStride + p), Vector256.Load(s + 5 * srcStride + p),
                            Vector256.Load(s + 6 * srcStride + p), Vector256.Load(s + 7 * srcStride + p), dst + p * dstStride + r, dstStride);
                    if (p < depth) TransposeByFours(s + p, srcStride, 8, depth - p, dst + p * dstStride + r, dstStride);
                }
            TransposeByFours(src + r * srcStride, srcStride, rows - r, depth, dst + r, dstStride);
        }

        /// <summary><see cref="Transpose"/> four rows × four steps at a time.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void TransposeByFours(float* src, nint srcStride, int rows, int depth, float* dst, nint dstStride)
        {
            int r = 0;
            if (BlockTranspose.FourByFour)
                for (; r + 4 <= rows; r += 4)
                {
                    float* s0 = src + r * srcStride, s1 = s0 + srcStride, s2 = s1 + srcStride, s3 = s2 + srcStride;
                    int p = 0;
                    for (; p + 4 <= depth; p += 4)
                        BlockTranspose.Store4x4(Vector128.Load(s0 + p), Vector128.Load(s1 + p), Vector128.Load(s2 + p), Vector128.Load(s3 + p),
                            dst + p * dstStride + r, dstStride);
                    for (; p < depth; p++)
                    {
                        float* d = dst + p * dstStride + r;
                        (d[0], d[1], d[2], d[3]) = (s0[p], s1[p], s2[p], s3[p]);
                    }
                }
            for (; r < rows; r++)
            {
                float* s = src + r * srcStride;
                for (int p = 0; p < depth; p++) dst[p * dstStride + r] = s[p];
            }
        }
    }
}
