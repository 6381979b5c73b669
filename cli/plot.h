/* cli/plot.h — accuracy against thinking tokens as an SVG chart: one or more
 * curves (benchmark runs) on a log-x axis, each point with its 95% interval
 * as a whisker, labelled with its budget, a legend when there are several
 * curves, and a line of metadata. Knows nothing of the database. */
#ifndef S1CTL_PLOT_H
#define S1CTL_PLOT_H

#include <stdbool.h>

/* One budget of a curve. Points without accuracy or thinking are skipped. */
typedef struct {
    int budget;
    bool has_accuracy, has_thinking;
    double accuracy, lo, hi; /* 0..1: accuracy and its 95% interval */
    double thinking;         /* mean thinking tokens */
    long n;                  /* graded samples behind the accuracy */
} s1ctl_plot_point;

/* A curve: its name in the legend, and whether its run is still going
 * (drawn dashed, "(unfinished)" in the legend). */
typedef struct {
    const char *name;
    const s1ctl_plot_point *pts;
    int n;
    bool unfinished;
} s1ctl_plot_curve;

/* title: the first line; meta: the second (model, date, sampling...);
 * figures: the third (the paper's figures), or NULL. */
typedef struct {
    const char *title, *meta, *figures;
} s1ctl_plot_text;

/* Writes the chart to path. 0, or -1 with errno set when the file cannot be
 * written. */
int s1ctl_plot_svg(const char *path, const s1ctl_plot_curve *curves, int n_curves,
                   const s1ctl_plot_text *text);

/* The values of the x axis's ticks for log10 range [lo, hi]: 1-2-5 steps
 * (…, 100, 200, 500, 1000, …), thinned to at most max; returns how many. */
int s1ctl_plot_ticks(double lo, double hi, double *ticks, int max);

#endif
