/* sql/sq_lex.h: a small SQL tokenizer for the statements the session reads
 * itself (BEGIN READ ONLY ..., SHOW ..., INTERLEAVE IN PARENT, an INSERT's
 * column list). SQLite parses everything else; this only needs to find words,
 * quoted names, literals and punctuation, skipping blanks and comments. */
#ifndef SQL_SQ_LEX_H
#define SQL_SQ_LEX_H

#include <stddef.h>

enum {
    SQ_TK_EOF = 0, /* end of input */
    SQ_TK_WORD,    /* a keyword or a bare identifier */
    SQ_TK_QNAME,   /* a quoted identifier: "x", [x] or `x` */
    SQ_TK_STRING,  /* 'text' */
    SQ_TK_NUMBER,
    SQ_TK_BLOB,  /* x'..' */
    SQ_TK_PARAM, /* ?, ?N, :x, @x, $x */
    SQ_TK_PUNCT, /* one character: ( ) , . ; and operators */
    SQ_TK_BAD    /* an unterminated quote or comment */
};

typedef struct sq_tok {
    int type;
    const char *p; /* the token's text in the input (quotes included) */
    int n;
} sq_tok;

/* Reads the token at p (blanks and comments skipped) up to end; returns the
 * position after it. At the end, t->type is SQ_TK_EOF and t->p == end. */
const char *sq_lex(const char *p, const char *end, sq_tok *t);

/* 1 if t is the bare word kw (ASCII case-insensitive). */
int sq_tok_is(const sq_tok *t, const char *kw);
/* 1 if t is the punctuation character c. */
int sq_tok_punct(const sq_tok *t, char c);

/* The name a WORD or QNAME token denotes (quotes removed, doubled quotes
 * undone), malloc'd; NULL for other tokens or on no memory. */
char *sq_tok_name(const sq_tok *t);
/* The text of a STRING token (quotes removed), malloc'd; NULL otherwise. */
char *sq_tok_string(const sq_tok *t);

/* Skips a balanced parenthesized group starting at the '(' token just read
 * (p points after it). Returns the position after the matching ')', or NULL
 * if the input ends first. */
const char *sq_lex_skip_group(const char *p, const char *end);

#endif
