using System.Globalization;
using NormSharp.Serialization;
using ScottPlot;

namespace NormSharp.Plotting;

/// <summary>One chart of a figure: its lines and how its axes are drawn.</summary>
/// <param name="Title">The chart title.</param>
/// <param name="XLabel">The x-axis label.</param>
/// <param name="YLabel">The y-axis label.</param>
/// <param name="Series">The lines.</param>
/// <param name="LogY">Plot log10 of y, labelled with the original values.</param>
/// <param name="Log2X">Plot log2 of x with ticks on the powers of two, labelled with the original values (batch
/// sizes 2, 4, …, 128).</param>
/// <param name="IntegerX">Whether the x axis counts whole units (epochs), so ticks fall on integers.</param>
/// <param name="Legend">The corner of the chart that holds the legend: one the curves leave free (lower right for
/// rising curves such as accuracy).</param>
/// <param name="Paired">Draw the series in pairs (training and validation of one model): both lines of a pair share
/// a colour, the second dashed.</param>
/// <param name="YMax">Cut the y axis at this value (in data units, before any log), so that a curve that blows up
/// leaves the top of the chart instead of squashing the others; null lets the axis fit all the data.</param>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series,
    bool LogY = false, bool Log2X = false, bool IntegerX = false, LegendCorner Legend = LegendCorner.UpperRight, bool Paired = false, double? YMax = null);

/// <summary>Where a chart's legend goes.</summary>
public enum LegendCorner
{
    /// <summary>The upper right corner.</summary>
    UpperRight,
    /// <summary>The upper left corner.</summary>
    UpperLeft,
    /// <summary>The lower right corner.</summary>
    LowerRight,
    /// <summary>The lower left corner.</summary>
    LowerLeft,
}

public static partial class Figure
{
    /// <summary>Saves <paramref name="panels"/> side by side in one PNG, each drawn as its <see cref="Panel"/> says.</summary>
    public static void SavePanels(string path, IReadOnlyList<Panel> panels, int panelWidth = 640, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(panels);
        if (panels.Count == 0) throw new ArgumentException("Figure.SavePanels: needs at least one panel.", nameof(panels));
        var multi = new Multiplot();
        multi.RemovePlot(multi.GetPlot(0));
        foreach (Panel p in panels) multi.AddPlot(Chart(p));
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        AtomicFile.WriteAllBytes(path, multi.Render(panelWidth * panels.Count, height).GetImageBytes(ImageFormat.Png));
    }

    private static Plot Chart(Panel panel)
    {
        IEnumerable<Series> series = panel.Log2X
            ? panel.Series.Select(s => s with { X = s.X.Select(Math.Log2).ToArray() })
            : panel.Series;
        Plot plot = Lines(panel.Title, panel.XLabel, panel.YLabel, series, panel.LogY);
        if (panel.Log2X)
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                IntegerTicksOnly = true,
                LabelFormatter = v => Math.Pow(2, v).ToString("G4", CultureInfo.InvariantCulture),
            };
        else if (panel.IntegerX)
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.ShowLegend(panel.Legend switch
        {
            LegendCorner.UpperLeft => Alignment.UpperLeft,
            LegendCorner.LowerRight => Alignment.LowerRight,
            LegendCorner.LowerLeft => Alignment.LowerLeft,
            _ => Alignment.UpperRight,
        });
        if (panel.YMax is double yMax)
        {
            double top = panel.LogY ? Math.Log10(yMax) : yMax;
            plot.Axes.AutoScale();
            AxisLimits limits = plot.Axes.GetLimits();
            if (limits.Top > top) plot.Axes.SetLimitsY(limits.Bottom, top);
        }
        if (panel.Paired)
        {
            var palette = new ScottPlot.Palettes.Category10();
            var lines = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
            for (int i = 0; i < lines.Count; i++)
            {
                lines[i].Color = palette.GetColor(i / 2);
                if (i % 2 == 1) lines[i].LinePattern = LinePattern.Dashed;
            }
        }
        return plot;
    }
}
