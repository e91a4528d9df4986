using System.Numerics;
using System.Numerics.Tensors;
using NormSharp.Kernels;

namespace NormSharp.Tests.Kernels;

/// <summary>The 2×2 max pooling's vector rows at each vector width, against PyTorch's window scan: every row length
/// a vector covers (the last vector overlapping), ties, NaNs and signed zeros, with and without the ReLU floor.</summary>
public class PoolingKernelTests
{
    public static TheoryData<int> Widths => VectorWidths.All;

    [Theory]
    [MemberData(nameof(Widths))]
    public void Vector_rows_give_the_window_scan_bit_for_bit_at_every_length(int bits) => VectorWidths.Run(bits, new RowsAtEveryLength());

    private readonly struct RowsAtEveryLength : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // Few distinct values make ties common; two NaN payloads show which NaN wins; −0 and +0 tie.
            float nanA = BitConverter.Int32BitsToSingle(0x7FC0_0001), nanB = BitConverter.Int32BitsToSingle(unchecked((int)0xFFC0_0002));
            float[] pool = { -2, -1, -0f, 0, 1, 3, nanA, nanB };
            Check<float, TFloat>(pool, v => BitConverter.SingleToInt32Bits(v));
            Check<double, TDouble>(pool.Select(v => (double)v).ToArray(), v => BitConverter.DoubleToInt64Bits(v));
        }

        private static void Check<T, TVector>(T[] pool, Func<T, long> bitsOf)
            where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
        {
            var random = new Random(3);
            int lanes = TVector.Count;
            for (int length = lanes; length <= 3 * lanes + 1; length++)
                foreach (bool relu in new[] { false, true })
                    for (int round = 0; round < 20; round++)
                    {
                        // An odd input width leaves a last column in no window.
                        int width = 2 * length + round % 2;
                        T[] top = Enumerable.Range(0, width).Select(_ => pool[random.Next(pool.Length)]).ToArray();
                        T[] bottom = Enumerable.Range(0, width).Select(_ => pool[random.Next(pool.Length)]).ToArray();
                        T[] row = Enumerable.Repeat(T.CreateChecked(-999), length + 1).ToArray();
                        Pooling.MaxPairs<T, TVector>(top, bottom, row.AsSpan(0, length), relu);

                        // The unfused layers: ReLU over the inputs, then PyTorch's scan (a NaN wins, else the first maximum).
                        if (relu)
                        {
                            TensorPrimitives.Max(top, T.Zero, top);
                            TensorPrimitives.Max(bottom, T.Zero, bottom);
                        }
                        for (int ow = 0; ow < length; ow++)
                        {
                            T max = top[2 * ow];
                            foreach (T v in new[] { top[2 * ow + 1], bottom[2 * ow], bottom[2 * ow + 1] })
                                if (v > max || T.IsNaN(v)) max = v;
                            Assert.True(bitsOf(max) == bitsOf(row[ow]), $"{lanes} lanes, {length} outputs, relu {relu}, output {ow}: {row[ow]} instead of {max}");
                        }
                        Assert.Equal(T.CreateChecked(-999), row[length]);
                    }
        }
    }
}
