/* Result formats of `meridian sql` (see sql_fmt.h): the sqlite3 shell's, measured against
 * Debian's sqlite3 3.40 (tests/cli/test_cli_sql.c compares them byte for byte). */
#include "cmd/sql_fmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const format_names[] = {"table", "csv", "tsv", "json", "line"};

int sf_format_parse(const char *name, sf_format *out)
{
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        if (strcasecmp(name, format_names[i]) == 0) {
            *out = (sf_format)i;
            return 0;
        }
    return -1;
}

const char *sf_format_name(sf_format f)
{
    return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "?";
}

struct sf_result {
    FILE *out;
    sf_opts o;
    int ncol;
    char **names;
    int64_t nrows;
    bool emitted;
    /* table (not expanded): every cell's text, row after row; NULL for SQL NULL. */
    char **cells;
    size_t ncells, cap;
};

/* A value's text as sqlite3_column_text gives it to the sqlite3 shell (a C string, so a
 * blob or text stops at its first NUL), malloc'd; NULL for SQL NULL. The value is copied
 * first: msql_column_value hands out an unprotected value, which only sqlite3_value_dup
 * may read. *oom is set when memory runs out. */
static char *value_text(sqlite3_value *v, bool *oom)
{
    if (sqlite3_value_type(v) == SQLITE_NULL)
        return NULL;
    sqlite3_value *d = sqlite3_value_dup(v);
    if (!d) {
        *oom = true;
        return NULL;
    }
    const unsigned char *t = sqlite3_value_text(d);
    char *s = strdup(t ? (const char *)t : "");
    sqlite3_value_free(d);
    if (!s)
        *oom = true;
    return s;
}

sf_result *sf_begin(FILE *out, const sf_opts *o, int ncol, const char *const *names)
{
    sf_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->out = out;
    r->o = *o;
    if (r->o.header < 0)
        r->o.header = r->o.format == SF_TABLE;
    r->ncol = ncol;
    r->names = calloc((size_t)ncol, sizeof *r->names);
    if (!r->names) {
        free(r);
        return NULL;
    }
    for (int i = 0; i < ncol; i++)
        if (!(r->names[i] = strdup(names[i] ? names[i] : ""))) {
            sf_discard(r);
            return NULL;
        }
    return r;
}

int64_t sf_rows(const sf_result *r)
{
    return r ? r->nrows : 0;
}

bool sf_emitted(const sf_result *r)
{
    return r && r->emitted;
}

/* ---- csv and tsv ---- */

/* sqlite3 -csv quotes a field holding any of these bytes, and the empty string. */
static bool csv_needs_quote(const char *s)
{
    if (!*s)
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '\'' || *p == ',' || *p >= 0x7f)
            return true;
    return false;
}

static void csv_field(FILE *f, const char *s)
{
    if (!s)
        return; /* NULL: an empty field, unquoted */
    if (!csv_needs_quote(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void delimited_line(sf_result *r, char *const *fields)
{
    bool csv = r->o.format == SF_CSV;
    for (int i = 0; i < r->ncol; i++) {
        if (i)
            fputc(csv ? ',' : '\t', r->out);
        if (csv)
            csv_field(r->out, fields[i]);
        else if (fields[i])
            fputs(fields[i], r->out);
    }
    fputc('\n', r->out);
}

/* ---- json ---- */

/* A JSON string of n bytes as sqlite3 -json writes it: '"' and '\\' escaped, control bytes
 * as \b \f \n \r \t or \u00XX, everything else (UTF-8 included) as it is. */
static void json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c < 0x20) {
            static const char short_esc[] = {
                ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
            if (c < sizeof short_esc && short_esc[c])
                fprintf(f, "\\%c", short_esc[c]);
            else
                fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

static int json_row(sf_result *r, sqlite3_value *const *vals)
{
    fputs(r->nrows ? ",\n{" : "[{", r->out);
    for (int i = 0; i < r->ncol; i++) {
        if (i)
            fputc(',', r->out);
        json_string(r->out, r->names[i], strlen(r->names[i]));
        fputc(':', r->out);
        sqlite3_value *v = sqlite3_value_dup(vals[i]);
        if (!v)
            return -1;
        switch (sqlite3_value_type(v)) {
        case SQLITE_NULL:
            fputs("null", r->out);
            break;
        case SQLITE_FLOAT: {
            double d = sqlite3_value_double(v);
            char num[64];
            if (isinf(d)) /* JSON has no infinity: sqlite3 writes 1e999 */
                snprintf(num, sizeof num, "%s1e999", d < 0 ? "-" : "");
            else /* SQLite's printf: %!.20g keeps a ".0" on whole numbers */
                sqlite3_snprintf((int)sizeof num, num, "%!.20g", d);
            fputs(num, r->out);
            break;
        }
        case SQLITE_BLOB: {
            const void *b = sqlite3_value_blob(v);
            json_string(r->out, b ? b : "", (size_t)sqlite3_value_bytes(v));
            break;
        }
        case SQLITE_TEXT: {
            const unsigned char *t = sqlite3_value_text(v);
            json_string(r->out, t ? (const char *)t : "", t ? strlen((const char *)t) : 0);
            break;
        }
        default: { /* an integer, in SQLite's own text */
            const unsigned char *t = sqlite3_value_text(v);
            fputs(t ? (const char *)t : "", r->out);
        }
        }
        sqlite3_value_free(v);
    }
    fputc('}', r->out);
    return 0;
}

/* ---- line ---- */

static void line_record(sf_result *r, char *const *fields)
{
    int w = 5; /* sqlite3 -line: names right-aligned to at least 5 bytes */
    for (int i = 0; i < r->ncol; i++) {
        int len = (int)strlen(r->names[i]);
        if (len > w)
            w = len;
    }
    if (r->nrows)
        fputc('\n', r->out);
    for (int i = 0; i < r->ncol; i++)
        fprintf(r->out, "%*s = %s\n", w, r->names[i], fields[i] ? fields[i] : "");
}

/* ---- table ---- */

/* A value as the table shows it, as sqlite3 -table does: lines split at control characters
 * ("\r\n" counts as one), tabs expanded to the next multiple of 8 characters. Copies the line
 * of s starting at *pos into buf (when non-NULL; it must hold the line, at most 8 * strlen + 1
 * bytes) and returns its width: the bytes of the line that do not continue a UTF-8 sequence
 * (characters, not terminal cells; a stray continuation byte where a character starts moves a
 * tab stop but has no width, as in sqlite3). *pos moves to the next line, or NULL after the
 * last one. */
static int table_line(const char **pos, char *buf)
{
    const char *z = *pos;
    int n = 0, width = 0;
    size_t k = 0;
    while (*z) {
        unsigned char c = (unsigned char)*z;
        if (c == '\t') {
            do {
                if (buf)
                    buf[k++] = ' ';
                n++;
                width++;
            } while (n % 8);
            z++;
        } else if (c < ' ') {
            break;
        } else {
            do {
                if (buf)
                    buf[k++] = *z;
                width += ((unsigned char)*z & 0xc0) != 0x80;
                z++;
            } while (((unsigned char)*z & 0xc0) == 0x80);
            n++;
        }
    }
    if (buf)
        buf[k] = '\0';
    if (*z)
        z += z[0] == '\r' && z[1] == '\n' ? 2 : 1;
    *pos = *z ? z : NULL;
    return width;
}

static void dashes(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc('-', f);
}

static void spaces(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc(' ', f);
}

static void table_rule(const sf_result *r, const int *w)
{
    fputc('+', r->out);
    for (int c = 0; c < r->ncol; c++) {
        dashes(r->out, w[c] + 2);
        fputc('+', r->out);
    }
    fputc('\n', r->out);
}

static void table_print(sf_result *r)
{
    if (r->nrows == 0)
        return; /* sqlite3 -table prints nothing, not even the header */
    int *w = calloc((size_t)r->ncol, sizeof *w);
    size_t longest = 0;
    bool multiline = false;
    if (!w)
        return;
    for (int c = 0; c < r->ncol; c++) {
        if (r->o.header) { /* a name shows its first line only */
            const char *p = r->names[c];
            w[c] = table_line(&p, NULL);
        }
        if (strlen(r->names[c]) > longest)
            longest = strlen(r->names[c]);
    }
    for (size_t i = 0; i < r->ncells; i++) {
        const char *p = r->cells[i] ? r->cells[i] : "";
        int c = (int)(i % (size_t)r->ncol), lines = 0;
        if (strlen(p) > longest)
            longest = strlen(p);
        while (p) {
            int n = table_line(&p, NULL);
            if (n > w[c])
                w[c] = n;
            lines++;
        }
        multiline |= lines > 1;
    }
    char *buf = malloc(8 * longest + 1);
    const char **pos = calloc((size_t)r->ncol, sizeof *pos);
    if (!buf || !pos)
        goto out;
    table_rule(r, w);
    if (r->o.header) {
        for (int c = 0; c < r->ncol; c++) {
            const char *p = r->names[c];
            int n = table_line(&p, buf), left = (w[c] - n) / 2;
            fputs("| ", r->out);
            spaces(r->out, left);
            fputs(buf, r->out);
            spaces(r->out, w[c] - n - left + 1);
        }
        fputs("|\n", r->out);
        table_rule(r, w);
    }
    for (int64_t row = 0; row < r->nrows; row++) {
        char **cells = r->cells + row * r->ncol;
        if (row && multiline)
            table_rule(r, w);
        for (int c = 0; c < r->ncol; c++)
            pos[c] = cells[c] ? cells[c] : "";
        for (bool more = true; more;) {
            more = false;
            for (int c = 0; c < r->ncol; c++) {
                int n = 0;
                buf[0] = '\0';
                if (pos[c])
                    n = table_line(&pos[c], buf);
                more |= pos[c] != NULL;
                fprintf(r->out, "| %s", buf);
                spaces(r->out, w[c] - n + 1);
            }
            fputs("|\n", r->out);
        }
    }
    table_rule(r, w);
out:
    free(pos);
    free(buf);
    free(w);
}

/* \x: one block per record, "name | value", continuation lines under the value. */
static void expanded_record(sf_result *r, char *const *fields)
{
    int w = 0;
    for (int c = 0; c < r->ncol; c++) {
        const char *p = r->names[c];
        int n = table_line(&p, NULL);
        if (n > w)
            w = n;
    }
    size_t longest = 0;
    for (int c = 0; c < r->ncol; c++) {
        size_t a = strlen(r->names[c]), b = fields[c] ? strlen(fields[c]) : 0;
        longest = a > longest ? a : longest;
        longest = b > longest ? b : longest;
    }
    char *buf = malloc(8 * longest + 1);
    if (!buf)
        return;
    fprintf(r->out, "-[ RECORD %lld ]\n", (long long)r->nrows + 1);
    for (int c = 0; c < r->ncol; c++) {
        const char *name = r->names[c];
        int n = table_line(&name, buf);
        fputs(buf, r->out);
        spaces(r->out, w - n);
        const char *p = fields[c] ? fields[c] : "";
        for (bool first = true; p; first = false) {
            if (!first)
                spaces(r->out, w);
            table_line(&p, buf);
            fprintf(r->out, " | %s\n", buf);
        }
    }
    free(buf);
}

/* ---- rows ---- */

int sf_row(sf_result *r, sqlite3_value *const *vals)
{
    if (r->o.format == SF_JSON) {
        if (json_row(r, vals) != 0)
            return -1;
        r->nrows++;
        r->emitted = true;
        return 0;
    }
    bool buffered = r->o.format == SF_TABLE && !r->o.expanded;
    if (buffered && r->ncells + (size_t)r->ncol > r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64 * (size_t)r->ncol;
        char **cells = realloc(r->cells, cap * sizeof *cells);
        if (!cells)
            return -1;
        r->cells = cells;
        r->cap = cap;
    }
    char *one[64];
    char **fields = buffered        ? r->cells + r->ncells
                    : r->ncol <= 64 ? one
                                    : calloc((size_t)r->ncol, sizeof *fields);
    if (!fields)
        return -1;
    bool oom = false;
    for (int i = 0; i < r->ncol; i++)
        fields[i] = value_text(vals[i], &oom);
    if (oom) {
        for (int i = 0; i < r->ncol; i++)
            free(fields[i]);
        if (fields != one && !buffered)
            free(fields);
        return -1;
    }
    if (buffered) {
        r->ncells += (size_t)r->ncol;
        r->nrows++;
        return 0;
    }
    if (r->nrows == 0 && r->o.header && (r->o.format == SF_CSV || r->o.format == SF_TSV))
        delimited_line(r, r->names);
    if (r->o.format == SF_LINE)
        line_record(r, fields);
    else if (r->o.format == SF_TABLE)
        expanded_record(r, fields);
    else
        delimited_line(r, fields);
    r->nrows++;
    r->emitted = true;
    for (int i = 0; i < r->ncol; i++)
        free(fields[i]);
    if (fields != one)
        free(fields);
    return 0;
}

void sf_end(sf_result *r)
{
    if (!r)
        return;
    if (r->o.format == SF_TABLE && !r->o.expanded)
        table_print(r);
    else if (r->o.format == SF_JSON && r->nrows)
        fputs("]\n", r->out);
    if (r->nrows)
        r->emitted = true;
    fflush(r->out);
    sf_discard(r);
}

void sf_discard(sf_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncells; i++)
        free(r->cells[i]);
    free(r->cells);
    for (int i = 0; r->names && i < r->ncol; i++)
        free(r->names[i]);
    free(r->names);
    free(r);
}
