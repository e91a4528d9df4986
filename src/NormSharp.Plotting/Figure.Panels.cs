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
/// <param name="Legend">Where the legend goes: a corner the curves leave free (lower right for rising curves such as
/// accuracy), outside the chart, or nowhere (when a neighbouring panel's legend already names the same lines).</param>
/// <param name="Styles">How each series is drawn, in order (e.g. the training and validation curves of one model in
/// one colour, validation dashed); null gives each series the next colour, solid.</param>
/// <param name="YMax">Cut the y axis at this value (in data units, before any log), so that a curve that blows up
/// leaves the top of the chart instead of squashing the others; null lets the axis fit all the data.</param>
public sealed record Panel(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series,
    bool LogY = false, bool Log2X = false, bool IntegerX = false, LegendPosition Legend = LegendPosition.UpperRight, IReadOnlyList<LineStyle>? Styles = null, double? YMax = null);

/// <summary>How one line is drawn.</summary>
/// <param name="Color">An index into the Category10 palette (0 blue, 1 orange, 2 green, 3 red, …).</param>
/// <param name="Dash">Solid, dashed or dotted.</param>
public sealed record LineStyle(int Color, LineDash Dash = LineDash.Solid);

/// <summary>The pattern of a line.</summary>
public enum LineDash
{
    /// <summary>An unbroken line.</summary>
    Solid,
    /// <summary>Long dashes.</summary>
    Dashed,
    /// <summary>Dots.</summary>
    Dotted,
}

/// <summary>Where a chart's legend goes.</summary>
public enum LegendPosition
{
    /// <summary>The upper right corner.</summary>
    UpperRight,
    /// <summary>The upper left corner.</summary>
    UpperLeft,
    /// <summary>The lower right corner.</summary>
    LowerRight,
    /// <summary>The lower left corner.</summary>
    LowerLeft,
    /// <summary>Outside the chart, to its right: for charts whose curves leave no corner free.</summary>
    OutsideRight,
    /// <summary>No legend.</summary>
    None,
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
        if (panel.Legend == LegendPosition.OutsideRight) plot.ShowLegend(Edge.Right);
        else if (panel.Legend == LegendPosition.None) plot.HideLegend();
        else plot.ShowLegend(panel.Legend switch
        {
            LegendPosition.UpperLeft => Alignment.UpperLeft,
            LegendPosition.LowerRight => Alignment.LowerRight,
            LegendPosition.LowerLeft => Alignment.LowerLeft,
            _ => Alignment.UpperRight,
        });
        if (panel.YMax is double yMax)
        {
            // Fit the axis to the data below the cut, so the margin is not computed from the values cut off.
            double top = panel.LogY ? Math.Log10(yMax) : yMax;
            double[] shown = panel.Series.SelectMany(s => s.Y).Select(y => panel.LogY ? Math.Log10(y) : y)
                .Where(y => double.IsFinite(y) && y <= top).ToArray();
            if (shown.Length > 0)
            {
                double bottom = shown.Min();
                plot.Axes.SetLimitsY(bottom - 0.05 * (top - bottom), top);
            }
        }
        if (panel.Styles is { } styles)
        {
            var palette = new ScottPlot.Palettes.Category10();
            var lines = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
            if (styles.Count != lines.Count)
                throw new ArgumentException($"Figure: panel '{panel.Title}' has {lines.Count} series but {styles.Count} styles.", nameof(panel));
            for (int i = 0; i < lines.Count; i++)
            {
                lines[i].Color = palette.GetColor(styles[i].Color);
                lines[i].LinePattern = styles[i].Dash switch
                {
                    LineDash.Dashed => LinePattern.Dashed,
                    LineDash.Dotted => LinePattern.Dotted,
                    _ => LinePattern.Solid,
                };
            }
        }
        return plot;
    }
}
