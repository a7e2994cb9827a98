/* How `meridian sql` prints a result. Each format is byte for byte what the sqlite3 shell
 * (3.40) prints for the same rows, so scripts written against `sqlite3` keep working:
 *  - table: `sqlite3 -table` (aligned, boxed with +-|, header centred, a line between rows
 *    once any value spans lines; nothing at all for no rows); with `expanded` one record per
 *    block, name | value, as psql's \x;
 *  - csv: `sqlite3 -csv`: no header unless asked, NULL an unquoted empty field, the empty
 *    string "", a field quoted when it holds a blank, a control byte, '"', '\'', ',' or a byte
 *    of 0x7f and up;
 *  - tsv: `sqlite3 -tabs`: values as they are, tab-separated;
 *  - json: `sqlite3 -json`: an array of objects, reals with 20 significant digits, nothing
 *    for no rows;
 *  - line: `sqlite3 -line`: "name = value" lines, names right-aligned, records apart.
 * A value's text is SQLite's own (sqlite3_value_text), so numbers read exactly as sqlite3
 * shows them. */
#ifndef CMD_SQL_FMT_H
#define CMD_SQL_FMT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum sf_format { SF_TABLE, SF_CSV, SF_TSV, SF_JSON, SF_LINE } sf_format;

/* "table|csv|tsv|json|line", for usage lines. */
#define SF_FORMAT_NAMES "table|csv|tsv|json|line"

typedef struct sf_opts {
    sf_format format;
    int header;    /* 1 print the column names, 0 do not, -1 the format's default (table:
                    * yes; csv, tsv: no; json and line always name every value) */
    bool expanded; /* table only: one block per record */
} sf_opts;

/* Parses a format name (case-insensitive). 0, or -1 for an unknown name. */
int sf_format_parse(const char *name, sf_format *out);
const char *sf_format_name(sf_format f);

/* One result being printed. Streaming formats write every row as it arrives; table buffers
 * the rows (the widths depend on all of them) and prints at sf_end. */
typedef struct sf_result sf_result;

/* Starts a result of ncol (>= 1) columns named names (copied) printed to out (borrowed: it
 * must outlive the result). NULL when out of memory. */
sf_result *sf_begin(FILE *out, const sf_opts *o, int ncol, const char *const *names);
/* Adds a row of ncol values (read now, not kept). 0, or -1 when out of memory. */
int sf_row(sf_result *r, sqlite3_value *const *vals);
/* Rows added so far. */
int64_t sf_rows(const sf_result *r);
/* True once anything of this result reached out (a caller may only rerun a statement
 * unseen while this is false). */
bool sf_emitted(const sf_result *r);
/* Prints what is buffered and the closing lines, and frees r (NULL is fine). */
void sf_end(sf_result *r);
/* Frees r without printing what is still buffered (NULL is fine). */
void sf_discard(sf_result *r);

#endif
