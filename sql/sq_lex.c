/* sql/sq_lex.c: the session's small SQL tokenizer (see sq_lex.h). */
#include "sql/sq_lex.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_ident_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static int is_ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Skips blanks and comments; returns the next position (end if none), or
 * NULL inside an unterminated block comment. */
static const char *skip_space(const char *p, const char *end)
{
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n')
                p++;
            continue;
        }
        if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
            const char *q = p + 2;
            while (end - q >= 2 && !(q[0] == '*' && q[1] == '/'))
                q++;
            if (end - q < 2)
                return end; /* SQLite accepts an unterminated comment at the end */
            p = q + 2;
            continue;
        }
        return p;
    }
}

/* Position after a quoted run starting at p (p[0] is the quote), or NULL. */
static const char *skip_quoted(const char *p, const char *end, char close)
{
    const char *q = p + 1;
    for (;;) {
        if (q >= end)
            return NULL;
        if (*q == close) {
            if (close != ']' && q + 1 < end && q[1] == close) {
                q += 2;
                continue;
            }
            return q + 1;
        }
        q++;
    }
}

const char *sq_lex(const char *p, const char *end, sq_tok *t)
{
    p = skip_space(p, end);
    t->p = p;
    t->n = 0;
    if (p >= end) {
        t->type = SQ_TK_EOF;
        return end;
    }
    unsigned char c = (unsigned char)*p;
    const char *q;
    if ((c == 'x' || c == 'X') && end - p >= 2 && p[1] == '\'') {
        q = skip_quoted(p + 1, end, '\'');
        t->type = q ? SQ_TK_BLOB : SQ_TK_BAD;
        q = q ? q : end;
    } else if (is_ident_start(c)) {
        q = p + 1;
        while (q < end && is_ident_char((unsigned char)*q))
            q++;
        t->type = SQ_TK_WORD;
    } else if (c == '"' || c == '`' || c == '[') {
        q = skip_quoted(p, end, c == '[' ? ']' : (char)c);
        t->type = q ? SQ_TK_QNAME : SQ_TK_BAD;
        q = q ? q : end;
    } else if (c == '\'') {
        q = skip_quoted(p, end, '\'');
        t->type = q ? SQ_TK_STRING : SQ_TK_BAD;
        q = q ? q : end;
    } else if (isdigit(c) || (c == '.' && end - p >= 2 && isdigit((unsigned char)p[1]))) {
        q = p;
        while (q < end && (isalnum((unsigned char)*q) || *q == '.' ||
                           ((*q == '+' || *q == '-') && (q[-1] == 'e' || q[-1] == 'E'))))
            q++;
        t->type = SQ_TK_NUMBER;
    } else if (c == '?' || c == ':' || c == '@' || c == '$') {
        q = p + 1;
        while (q < end && is_ident_char((unsigned char)*q))
            q++;
        t->type = SQ_TK_PARAM;
    } else {
        q = p + 1;
        t->type = SQ_TK_PUNCT;
    }
    t->n = (int)(q - p);
    return q;
}

int sq_tok_is(const sq_tok *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->type == SQ_TK_WORD && (size_t)t->n == n && strncasecmp(t->p, kw, n) == 0;
}

int sq_tok_punct(const sq_tok *t, char c)
{
    return t->type == SQ_TK_PUNCT && t->p[0] == c;
}

/* Copies the n bytes at p, undoing doubled close quotes. */
static char *unquote(const char *p, int n, char close)
{
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    int j = 0;
    for (int i = 0; i < n; i++) {
        s[j++] = p[i];
        if (p[i] == close && close != ']' && i + 1 < n && p[i + 1] == close)
            i++;
    }
    s[j] = 0;
    return s;
}

char *sq_tok_name(const sq_tok *t)
{
    if (t->type == SQ_TK_WORD)
        return unquote(t->p, t->n, 0);
    if (t->type != SQ_TK_QNAME || t->n < 2)
        return NULL;
    char close = t->p[0] == '[' ? ']' : t->p[0];
    return unquote(t->p + 1, t->n - 2, close);
}

char *sq_tok_string(const sq_tok *t)
{
    if (t->type != SQ_TK_STRING || t->n < 2)
        return NULL;
    return unquote(t->p + 1, t->n - 2, '\'');
}

const char *sq_lex_skip_group(const char *p, const char *end)
{
    int depth = 1;
    sq_tok t;
    while (depth > 0) {
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_EOF || t.type == SQ_TK_BAD)
            return NULL;
        if (sq_tok_punct(&t, '('))
            depth++;
        else if (sq_tok_punct(&t, ')'))
            depth--;
    }
    return p;
}
