/* Strict JSON for the QMP server: RFC 8259 plus what QEMU's parser also takes (single-quoted
 * strings, the \' escape), and nothing else: no comments, no trailing commas, no NaN or
 * Infinity, no leading zeros, no raw control characters in strings, valid UTF-8 only (no
 * overlong forms, surrogates or code points past U+10FFFF), no \u escape of a lone surrogate
 * or a noncharacter, no duplicate keys. json-c's tokener takes most of those even in strict
 * mode, so the QMP input goes through this instead and json-c only holds the result.
 *
 * Input is framed first, byte by byte as it arrives (qmp_json_feed): strings and bracket
 * depth are tracked until a whole value is there; a byte no JSON text may hold outside a
 * string ("stray") is an error at once, and the rest of that line is dropped. A complete
 * value is then parsed (qmp_json_parse). Error texts are QEMU's where it has one ("expecting
 * value", "expected separator in dict", "duplicate key", ...), after QEMU's "JSON parse
 * error, " prefix. Numbers keep their text: an integer that fits int64 or
 * uint64 is one, anything else is a double that serialises back as the client wrote it, so
 * an echoed "id" is always the same valid JSON.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp_int.h"

#define KEEP_CAP (64u << 10) /* a value buffer larger than this is freed after use */

/* --- UTF-8 ------------------------------------------------------------------------------- */

size_t qmp_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (n == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0; /* a continuation byte, an overlong 2-byte lead, or past U+10FFFF */
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* QEMU refuses noncharacters in strings too; so do we, to answer as it does. */
static bool is_nonchar(uint32_t cp)
{
	return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
}

bool qmp_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		size_t k = qmp_utf8_decode(p + i, n - i, &cp);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* Client bytes quoted in a message: printable ASCII as is, the rest as \xNN, at most 24
 * bytes, so the message is valid UTF-8 whatever the client sent. */
static void quote_bytes(char *dst, size_t size, const char *src, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < 24 && o + 5 < size; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f)
			dst[o++] = (char)c;
		else
			o += (size_t)snprintf(dst + o, size - o, "\\x%02x", c);
	}
	if (n > 24 && o + 4 < size)
		o += (size_t)snprintf(dst + o, size - o, "...");
	dst[o < size ? o : size - 1] = '\0';
}

/* --- parser ------------------------------------------------------------------------------ */

struct parser {
	const char *s;
	size_t n, pos;
	unsigned depth;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->n && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
		p->pos++;
}

static int peek(struct parser *p)
{
	return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1;
}

static int stray(struct parser *p)
{
	char q[128];
	quote_bytes(q, sizeof(q), p->s + p->pos, 1);
	return fail(p, "stray '%s'", q);
}

static int hex4(const char *s, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (uint32_t)d;
	}
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A \u escape at p->pos (after the backslash and 'u'), a surrogate pair included. */
static int parse_u_escape(struct parser *p, uint32_t *cp)
{
	char q[128];
	if (p->n - p->pos < 4 || hex4(p->s + p->pos, cp)) {
		quote_bytes(q, sizeof(q), p->s + p->pos, p->n - p->pos < 4 ? p->n - p->pos : 4);
		return fail(p, "\\u%s is not a valid Unicode character", q);
	}
	quote_bytes(q, sizeof(q), p->s + p->pos, 4);
	p->pos += 4;
	if (*cp >= 0xd800 && *cp <= 0xdbff && p->n - p->pos >= 6 && p->s[p->pos] == '\\' &&
	    p->s[p->pos + 1] == 'u') {
		uint32_t lo;
		if (!hex4(p->s + p->pos + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
			*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
			p->pos += 6;
		}
	}
	if ((*cp >= 0xd800 && *cp <= 0xdfff) || is_nonchar(*cp))
		return fail(p, "\\u%s is not a valid Unicode character", q);
	return 0;
}

static int parse_string(struct parser *p, struct json_object **out)
{
	char quote = p->s[p->pos++];
	size_t start = p->pos;
	/* The decoded string is never longer than its source. */
	char *buf = malloc(p->n - start + 1);
	size_t o = 0;
	if (!buf)
		return fail(p, "out of memory");
	for (;;) {
		if (p->pos >= p->n) {
			free(buf);
			return fail(p, "unterminated string");
		}
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == (unsigned char)quote) {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			free(buf);
			return fail(p, "control character in string");
		}
		if (c >= 0x80) {
			uint32_t cp;
			size_t k = qmp_utf8_decode((const unsigned char *)p->s + p->pos,
						   p->n - p->pos, &cp);
			if (!k || is_nonchar(cp)) {
				free(buf);
				return fail(p, "invalid UTF-8 sequence in string");
			}
			memcpy(buf + o, p->s + p->pos, k);
			o += k;
			p->pos += k;
			continue;
		}
		p->pos++;
		if (c != '\\') {
			buf[o++] = (char)c;
			continue;
		}
		int e = peek(p);
		p->pos++;
		const char *simple = strchr("\"'\\/bfnrt", e > 0 ? e : 'x');
		if (e > 0 && simple) {
			static const char map[] = "\"'\\/\b\f\n\r\t";
			buf[o++] = map[simple - "\"'\\/bfnrt"];
		} else if (e == 'u') {
			uint32_t cp;
			if (parse_u_escape(p, &cp)) {
				free(buf);
				return -1;
			}
			/* \uXXXX is 6 bytes, a pair 12: the UTF-8 (at most 4) fits. */
			o += put_utf8(buf + o, cp);
		} else {
			free(buf);
			return fail(p, "invalid escape sequence in string");
		}
	}
	*out = json_object_new_string_len(buf, (int)o);
	free(buf);
	return *out ? 0 : fail(p, "out of memory");
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? over the whole token; *is_int without
 * fraction or exponent. */
static bool number_ok(const char *s, size_t n, bool *is_int)
{
	size_t i = 0;
	*is_int = true;
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < n && s[i] == '.') {
		*is_int = false;
		size_t d = ++i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		*is_int = false;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t d = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == n;
}

static bool token_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '.' || c == '+' || c == '-' || c == '_';
}

static int parse_number(struct parser *p, struct json_object **out)
{
	size_t start = p->pos;
	while (token_char(peek(p)))
		p->pos++;
	size_t n = p->pos - start;
	char text[128], q[128];
	bool is_int;
	if (n >= sizeof(text) || !number_ok(p->s + start, n, &is_int)) {
		quote_bytes(q, sizeof(q), p->s + start, n);
		return fail(p, "invalid number '%s'", q);
	}
	memcpy(text, p->s + start, n);
	text[n] = '\0';
	char *end;
	if (is_int) {
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (!errno) {
			*out = json_object_new_int64(v);
			return *out ? 0 : fail(p, "out of memory");
		}
		errno = 0;
		unsigned long long u = text[0] == '-' ? 0 : strtoull(text, &end, 10);
		if (text[0] != '-' && !errno) {
			*out = json_object_new_uint64(u);
			return *out ? 0 : fail(p, "out of memory");
		}
	}
	/* The text stays the serialisation: an echo is what the client sent, even where the
	 * double is infinite. */
	*out = json_object_new_double_s(strtod(text, NULL), text);
	return *out ? 0 : fail(p, "out of memory");
}

static int parse_keyword(struct parser *p, struct json_object **out)
{
	size_t start = p->pos;
	while (token_char(peek(p)))
		p->pos++;
	size_t n = p->pos - start;
	const char *s = p->s + start;
	if (n == 4 && !memcmp(s, "true", 4))
		*out = json_object_new_boolean(1);
	else if (n == 5 && !memcmp(s, "false", 5))
		*out = json_object_new_boolean(0);
	else if (n == 4 && !memcmp(s, "null", 4))
		*out = NULL; /* json-c's null */
	else {
		char q[128];
		quote_bytes(q, sizeof(q), s, n);
		return fail(p, "invalid keyword '%s'", q);
	}
	return 0;
}

static int parse_value(struct parser *p, struct json_object **out);

static int parse_object(struct parser *p, struct json_object **out)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return fail(p, "out of memory");
	p->pos++;
	skip_ws(p);
	if (peek(p) == '}') {
		p->pos++;
		*out = o;
		return 0;
	}
	for (;;) {
		skip_ws(p);
		int c = peek(p);
		struct json_object *key = NULL, *val = NULL;
		if (c != '"' && c != '\'') {
			json_object_put(o);
			return c < 0 || c == '}' ? fail(p, "expecting value")
						 : fail(p, "key is not a string in object");
		}
		if (parse_string(p, &key))
			goto err;
		skip_ws(p);
		if (peek(p) != ':') {
			fail(p, "missing : in object pair");
			goto err;
		}
		p->pos++;
		if (parse_value(p, &val))
			goto err;
		const char *k = json_object_get_string(key);
		if (json_object_object_get_ex(o, k, NULL)) {
			json_object_put(val);
			fail(p, "duplicate key");
			goto err;
		}
		/* A key with a NUL in it is cut there, as QEMU's are. */
		json_object_object_add(o, k, val);
		json_object_put(key);
		skip_ws(p);
		c = peek(p);
		p->pos++;
		if (c == '}')
			break;
		if (c != ',') {
			json_object_put(o);
			return fail(p, "expected separator in dict");
		}
		continue;
err:
		json_object_put(key);
		json_object_put(o);
		return -1;
	}
	*out = o;
	return 0;
}

static int parse_array(struct parser *p, struct json_object **out)
{
	struct json_object *a = json_object_new_array();
	if (!a)
		return fail(p, "out of memory");
	p->pos++;
	skip_ws(p);
	if (peek(p) == ']') {
		p->pos++;
		*out = a;
		return 0;
	}
	for (;;) {
		struct json_object *v = NULL;
		if (parse_value(p, &v)) {
			json_object_put(a);
			return -1;
		}
		json_object_array_add(a, v);
		skip_ws(p);
		int c = peek(p);
		p->pos++;
		if (c == ']')
			break;
		if (c != ',') {
			json_object_put(a);
			return fail(p, "expected separator in list");
		}
	}
	*out = a;
	return 0;
}

static int parse_value(struct parser *p, struct json_object **out)
{
	*out = NULL;
	skip_ws(p);
	int c = peek(p);
	if (c < 0 || c == '}' || c == ']' || c == ',' || c == ':')
		return fail(p, "expecting value");
	if (c == '{' || c == '[') {
		if (++p->depth > QMP_JSON_MAX_DEPTH)
			return fail(p, "nesting deeper than %d", QMP_JSON_MAX_DEPTH);
		int r = c == '{' ? parse_object(p, out) : parse_array(p, out);
		p->depth--;
		return r;
	}
	if (c == '"' || c == '\'')
		return parse_string(p, out);
	if (c == '-' || (c >= '0' && c <= '9'))
		return parse_number(p, out);
	if (c >= 'a' && c <= 'z')
		return parse_keyword(p, out);
	return stray(p);
}

int qmp_json_parse(const char *s, size_t n, struct json_object **out, char *err, size_t errlen)
{
	struct parser p = {.s = s, .n = n, .err = err, .errlen = errlen};
	*out = NULL;
	if (parse_value(&p, out))
		return -EINVAL;
	skip_ws(&p);
	if (p.pos < p.n) {
		json_object_put(*out);
		*out = NULL;
		return stray(&p), -EINVAL;
	}
	return 0;
}

/* --- framing ----------------------------------------------------------------------------- */

void qmp_json_reset(struct qmp_json *j)
{
	if (j->cap > KEEP_CAP) {
		free(j->buf);
		j->buf = NULL;
		j->cap = 0;
	}
	j->len = 0;
	j->depth = 0;
	j->quote = 0;
	j->escape = false;
	j->scalar = false;
}

void qmp_json_free(struct qmp_json *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int append(struct qmp_json *j, char c)
{
	if (j->len + 1 > QMP_MAX_REQUEST)
		return -E2BIG;
	if (j->len + 1 > j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 256;
		char *p = realloc(j->buf, cap);
		if (!p)
			return -ENOMEM;
		j->buf = p;
		j->cap = cap;
	}
	j->buf[j->len++] = c;
	return 0;
}

/* A lexical error at byte c: reset, and drop the rest of the line unless c ended it. */
static enum qmp_json_status lex_error(struct qmp_json *j, char c, char *err, size_t errlen,
				      const char *what)
{
	char q[128];
	quote_bytes(q, sizeof(q), &c, 1);
	if (what)
		snprintf(err, errlen, "JSON parse error, %s", what);
	else
		snprintf(err, errlen, "JSON parse error, stray '%s'", q);
	qmp_json_reset(j);
	j->skip_line = c != '\n';
	return QMP_JSON_ERROR;
}

static enum qmp_json_status complete(struct qmp_json *j, struct json_object **out, char *err,
				     size_t errlen)
{
	char why[160];
	int r = qmp_json_parse(j->buf, j->len, out, why, sizeof(why));
	qmp_json_reset(j);
	if (r)
		snprintf(err, errlen, "JSON parse error, %s", why);
	return r ? QMP_JSON_ERROR : QMP_JSON_VALUE;
}

enum qmp_json_status qmp_json_feed(struct qmp_json *j, const char *in, size_t len, size_t *used,
				   struct json_object **out, char *err, size_t errlen)
{
	*out = NULL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		*used = i + 1;
		if (j->skip_line) {
			j->skip_line = c != '\n';
			continue;
		}
		if (j->scalar && (is_ws(c) || strchr("{}[],:\"'", c))) {
			*used = i; /* the delimiter is the next value's business */
			return complete(j, out, err, errlen);
		}
		if (j->len == 0 && is_ws(c))
			continue;
		if (j->quote) {
			if ((unsigned char)c < 0x20)
				return lex_error(j, c, err, errlen, "control character in string");
			if (append(j, c))
				return QMP_JSON_TOO_BIG;
			if (j->escape)
				j->escape = false;
			else if (c == '\\')
				j->escape = true;
			else if (c == j->quote) {
				j->quote = 0;
				if (j->depth == 0)
					return complete(j, out, err, errlen);
			}
			continue;
		}
		if (c == '"' || c == '\'') {
			j->quote = c;
		} else if (c == '{' || c == '[') {
			if (++j->depth > QMP_JSON_MAX_DEPTH) {
				lex_error(j, c, err, errlen, NULL);
				snprintf(err, errlen,
					 "JSON nesting depth limit exceeded"); /* QEMU's */
				return QMP_JSON_ERROR;
			}
		} else if (c == '}' || c == ']') {
			if (j->depth == 0)
				return lex_error(j, c, err, errlen, "expecting value");
			j->depth--;
		} else if (c == ',' || c == ':') {
			if (j->depth == 0)
				return lex_error(j, c, err, errlen, "expecting value");
		} else if (is_ws(c)) {
			c = ' ';
		} else if (token_char((unsigned char)c) && !(c >= 'A' && c <= 'Z' && c != 'E') &&
			   c != '_') {
			j->scalar = j->depth == 0;
		} else {
			return lex_error(j, c, err, errlen, NULL);
		}
		if (append(j, c))
			return QMP_JSON_TOO_BIG;
		if (j->depth == 0 && (c == '}' || c == ']'))
			return complete(j, out, err, errlen);
	}
	*used = len;
	return QMP_JSON_MORE;
}
