#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Canvas and plot area, in SVG user units. */
enum { W = 760, H = 480, LEFT = 70, RIGHT = 30, TOP = 84, BOTTOM = 60 };

/* Label boxes already placed, so the next label can avoid them. */
enum { MAX_LABELS = 512 };
typedef struct {
    double x0, y0, x1, y1;
} box;
typedef struct {
    box b[MAX_LABELS];
    int n;
} placed;

static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c",
                                     "#9467bd", "#ff7f0e", "#8c564b"};
#define N_COLORS ((int)(sizeof COLORS / sizeof *COLORS))

/* s with the five XML special characters escaped, for text and attributes. */
static void xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '<'    ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '&'  ? "&amp;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&apos;"
                                     : NULL;
        if (e)
            fputs(e, f);
        else
            fputc(*s, f);
    }
}

static bool plotted(const s1ctl_plot_point *p)
{
    return p->has_accuracy && p->has_thinking;
}

/* Thinking below 1 token is drawn at 1: log 0 has no place. */
static double thinking(const s1ctl_plot_point *p)
{
    return p->thinking < 1 ? 1 : p->thinking;
}

/* The log-x range: every plotted point with a margin, so none sits on the
 * frame; 100..10000 when nothing is plotted. */
typedef struct {
    double lo, hi;
} xrange;

static xrange x_range(const s1ctl_plot_curve *c, int n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < c[k].n; i++)
            if (plotted(&c[k].pts[i])) {
                lo = fmin(lo, log10(thinking(&c[k].pts[i])));
                hi = fmax(hi, log10(thinking(&c[k].pts[i])));
            }
    if (!isfinite(lo)) lo = 2, hi = 4;
    double pad = fmax((hi - lo) * 0.08, 0.15);
    return (xrange){lo - pad, hi + pad};
}

static double px(xrange r, double tokens)
{
    return LEFT + (log10(tokens) - r.lo) / (r.hi - r.lo) * (W - LEFT - RIGHT);
}

static double py(double accuracy)
{
    return TOP + (1 - accuracy) * (H - TOP - BOTTOM);
}

int s1ctl_plot_ticks(double lo, double hi, double *ticks, int max)
{
    static const double steps[] = {1, 2, 5};
    for (int every = 1;; every++) {
        int n = 0, k = 0;
        for (int e = (int)floor(lo); e <= (int)ceil(hi); e++)
            for (int s = 0; s < 3; s++, k++) {
                double v = steps[s] * pow(10, e);
                if (log10(v) < lo || log10(v) > hi || k % every) continue;
                if (n == max) break;
                ticks[n++] = v;
            }
        if (n < max || every > 6) return n;
    }
}

/* "500", "2k", "20k", "1.5M": tick labels that stay short. */
static void tick_label(char *buf, size_t cap, double v)
{
    if (v >= 1e6)
        snprintf(buf, cap, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, "%gk", v / 1e3);
    else
        snprintf(buf, cap, "%g", v);
}

static void axes(FILE *f, xrange r)
{
    int x0 = LEFT, x1 = W - RIGHT, y0 = TOP, y1 = H - BOTTOM;
    double ticks[16];
    int nt = s1ctl_plot_ticks(r.lo, r.hi, ticks, 10);
    fprintf(f, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    for (int a = 0; a <= 100; a += 20)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", x0, py(a / 100.0), x1,
                py(a / 100.0));
    for (int i = 0; i < nt; i++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", px(r, ticks[i]), y0,
                px(r, ticks[i]), y1);
    fprintf(f, "</g>\n<g font-family=\"sans-serif\" font-size=\"12\" fill=\"#333\">\n");
    for (int a = 0; a <= 100; a += 20)
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", x0 - 6,
                py(a / 100.0) + 4, a);
    for (int i = 0; i < nt; i++) {
        char label[16];
        tick_label(label, sizeof label, ticks[i]);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px(r, ticks[i]),
                y1 + 18, label);
    }
    fprintf(
        f,
        "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">mean thinking tokens (log scale)</text>\n"
        "<text x=\"18\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">"
        "accuracy (95%% interval)</text>\n"
        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n"
        "</g>\n",
        (x0 + x1) / 2, H - 14, (y0 + y1) / 2, (y0 + y1) / 2, x0, y0, x1 - x0, y1 - y0);
}

static bool overlaps(const placed *pl, box b)
{
    for (int i = 0; i < pl->n; i++)
        if (b.x0 < pl->b[i].x1 && pl->b[i].x0 < b.x1 && b.y0 < pl->b[i].y1 && pl->b[i].y0 < b.y1)
            return true;
    return false;
}

/* A label near (x, y): above the point, else below it, else further out,
 * wherever it covers no label placed before; the last try when all do. */
static box place_label(placed *pl, double x, double y, size_t chars)
{
    static const double dy[] = {-9, 19, -22, 32, -35, 45};
    double w = 6.5 * (double)chars + 2, h = 12;
    box b = {0};
    for (size_t t = 0; t < sizeof dy / sizeof *dy; t++) {
        b = (box){x - w / 2, y + dy[t] - h + 2, x + w / 2, y + dy[t] + 2};
        if (!overlaps(pl, b) && b.y0 > TOP && b.y1 < H - BOTTOM) break;
    }
    if (pl->n < MAX_LABELS) pl->b[pl->n++] = b;
    return b;
}

/* n per point is said once in the metadata when every point has the same,
 * otherwise beside each budget. */
static bool same_n(const s1ctl_plot_curve *c, int n, long *out)
{
    long seen = -1;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < c[k].n; i++) {
            const s1ctl_plot_point *p = &c[k].pts[i];
            if (!plotted(p)) continue;
            if (seen >= 0 && p->n != seen) return false;
            seen = p->n;
        }
    *out = seen;
    return seen >= 0;
}

/* dodge: pixels the curve's whiskers move sideways, so the intervals of
 * overlaid curves at the same thinking stay apart. */
static void curve(FILE *f, const s1ctl_plot_curve *c, const char *color, xrange r, double dodge,
                  bool show_n, placed *pl)
{
    fprintf(f,
            "<g stroke=\"%s\" fill=\"%s\">\n<polyline fill=\"none\" stroke-width=\"2\"%s points=\"",
            color, color, c->unfinished ? " stroke-dasharray=\"6 4\"" : "");
    for (int i = 0; i < c->n; i++)
        if (plotted(&c->pts[i]))
            fprintf(f, "%.1f,%.1f ", px(r, thinking(&c->pts[i])), py(c->pts[i].accuracy));
    fprintf(f, "\"/>\n");
    for (int i = 0; i < c->n; i++) {
        const s1ctl_plot_point *p = &c->pts[i];
        if (!plotted(p)) continue;
        double x = px(r, thinking(p)), y = py(p->accuracy), ylo = py(p->lo), yhi = py(p->hi);
        fprintf(f,
                "<path stroke-width=\"1\" fill=\"none\" d=\"M%.1f %.1fV%.1fM%.1f %.1fh6M%.1f "
                "%.1fh6\"/>\n",
                x + dodge, ylo, yhi, x + dodge - 3, ylo, x + dodge - 3, yhi);
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"><title>budget %d: %.1f%% "
                "(95%% interval %.1f-%.1f%%, n=%ld) at %.0f thinking tokens</title></circle>\n",
                x, y, p->budget, 100 * p->accuracy, 100 * p->lo, 100 * p->hi, p->n, p->thinking);
        char label[48];
        if (show_n)
            snprintf(label, sizeof label, "%d (n=%ld)", p->budget, p->n);
        else
            snprintf(label, sizeof label, "%d", p->budget);
        box b = place_label(pl, x, y, strlen(label));
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" stroke=\"none\" font-family=\"sans-serif\" "
                "font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
                (b.x0 + b.x1) / 2, b.y1 - 2, label);
    }
    fprintf(f, "</g>\n");
}

/* The legend, top left inside the plot, when there is more than one curve. */
static void legend(FILE *f, const s1ctl_plot_curve *c, int n)
{
    if (n < 2) return;
    fprintf(f, "<g font-family=\"sans-serif\" font-size=\"12\">\n");
    for (int k = 0; k < n; k++) {
        double y = TOP + 16 + 16 * k;
        fprintf(f,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2\"%s/>\n<text x=\"%d\" y=\"%.1f\">",
                LEFT + 10, y - 4, LEFT + 34, y - 4, COLORS[k % N_COLORS],
                c[k].unfinished ? " stroke-dasharray=\"6 4\"" : "", LEFT + 40, y);
        xml(f, c[k].name);
        fprintf(f, "%s</text>\n", c[k].unfinished ? " (unfinished)" : "");
    }
    fprintf(f, "</g>\n");
}

static void header(FILE *f, const s1ctl_plot_text *t, const s1ctl_plot_curve *c, int n)
{
    static const char *const lines[] = {"15", "12", "12"};
    const char *text[] = {t->title, t->meta, t->figures};
    fprintf(f, "<g font-family=\"sans-serif\" fill=\"#000\">\n");
    for (int i = 0; i < 3; i++) {
        if (!text[i]) continue;
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"%s\">", LEFT, 24 + 19 * i, lines[i]);
        xml(f, text[i]);
        if (i == 0 && n == 1 && c[0].unfinished) fputs(" (unfinished)", f);
        fputs("</text>\n", f);
    }
    bool any = false;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < c[k].n; i++)
            any = any || plotted(&c[k].pts[i]);
    if (!any)
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\" fill=\"#888\">"
                "no graded results yet</text>\n",
                (LEFT + W - RIGHT) / 2, H / 2);
    fprintf(f, "</g>\n");
}

int s1ctl_plot_svg(const char *path, const s1ctl_plot_curve *curves, int n_curves,
                   const s1ctl_plot_text *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    xrange r = x_range(curves, n_curves);
    long n = -1;
    bool show_n = !same_n(curves, n_curves, &n);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
            W, H, W, H);
    header(f, text, curves, n_curves);
    axes(f, r);
    placed pl = {.n = 0};
    for (int k = 0; k < n_curves; k++)
        curve(f, &curves[k], COLORS[k % N_COLORS], r, 4.0 * k - 2.0 * (n_curves - 1), show_n, &pl);
    legend(f, curves, n_curves);
    if (!show_n && n >= 0)
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" font-family=\"sans-serif\" font-size=\"11\" "
                "fill=\"#555\" text-anchor=\"end\">n = %ld graded samples per point</text>\n",
                W - RIGHT, H - BOTTOM - 6, n);
    fputs("</svg>\n", f);
    int bad = ferror(f);
    return fclose(f) || bad ? -1 : 0;
}
