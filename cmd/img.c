/* kestrel img: a qemu-img-like disk image tool over the block layer (include/block/block.h).
 * Subcommands: create, info, check, resize, map, snapshot, commit, rebase, convert, compare,
 * measure, bench.
 * Output formats and exit codes follow qemu-img where it has them (check: 0 clean,
 * 1 check failed, 2 corruptions, 3 leaks only). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "block/block.h"
#include "cmd/cmd.h"
#include "util/size.h"

#define CONVERT_CHUNK (2u << 20)

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;
	fputs("kestrel img: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* The block layer's message if it left one, else strerror. */
static int fail_blk(const char *what, const char *path, int err)
{
	const char *m = blk_last_error();
	if (m && *m)
		return fail("%s: %s", what, m);
	return fail("%s: %s: %s", what, path, strerror(-err));
}

static void img_usage(FILE *out)
{
	fprintf(out,
		"Usage: kestrel img COMMAND [OPTIONS]\n"
		"\n"
		"  create [-f qcow2|raw] [-b BACKING [-F FMT]] [-o OPTS] FILE SIZE\n"
		"         OPTS: cluster_size=N,compression_type=zlib|zstd,refcount_bits=N,\n"
		"               compat=0.10|1.1,lazy_refcounts=on|off,\n"
		"               preallocation=off|metadata|falloc|full (metadata: qcow2 only;\n"
		"               falloc and full also reserve or write the data space)\n"
		"  info [-f FMT] [-U] [--output human|json] [--backing-chain] FILE\n"
		"  check [-f FMT] [-U] [-r leaks|all] [--output human|json] FILE\n"
		"  resize [-f FMT] [--shrink] FILE [+|-]SIZE\n"
		"  map [-f FMT] [-U] [--output human|json] FILE\n"
		"  compare [-f FMT] [-F FMT] [-U] [-q] FILE1 FILE2\n"
		"  snapshot [-l | -c NAME | -a NAME | -d NAME] FILE\n"
		"  commit [-f FMT] [-d] FILE         write FILE's data into its backing file\n"
		"  rebase [-f FMT] [-u] -b BACKING [-F FMT] FILE\n"
		"  convert [-p] [-f FMT] [-O FMT] [-c] [-S SIZE] [-o OPTS] [-t CACHE] [-U]\n"
		"          [-n] [-B BACKING [-F FMT]] IN OUT\n"
		"         -n: write into the existing OUT (at least as large as IN) instead of\n"
		"         creating it; -B: OUT (qcow2) gets BACKING as its backing file and holds\n"
		"         only the clusters where IN differs from BACKING\n"
		"  measure [-O FMT] [-o OPTS] [--size SIZE | [-f FMT] [-U] FILE]\n"
		"          [--output human|json]  host space an OUT image of FMT needs\n"
		"  bench [-f FMT] [-w] [-c COUNT] [-s BUFSIZE] [-t CACHE] FILE\n"
		"\n"
		"SIZE takes K, M, G, T suffixes (powers of 1024). CACHE is writeback, none or "
		"unsafe.\n"
		"Images are locked as QEMU locks them: a command that writes is refused while\n"
		"anyone else (a running VM, qemu-img) has the image open, one that reads while\n"
		"anyone writes it; -U (--force-share) reads an image in use anyway.\n");
}

static int parse_fmt(const char *s, enum blk_format *f)
{
	int v = (int)blk_format_parse(s);
	if (v < 0)
		return fail("unknown image format '%s' (raw or qcow2)", s);
	*f = (enum blk_format)v;
	return 0;
}

/* -F: the backing file's format, kept as the name the image will record */
static int parse_backing_fmt(const char *s, const char **name)
{
	if ((int)blk_format_parse(s) < 0)
		return fail("unknown backing format '%s'", s);
	*name = s;
	return 0;
}

static int parse_cache(const char *s, enum blk_cache *c)
{
	if (!strcmp(s, "writeback"))
		*c = BLK_CACHE_WRITEBACK;
	else if (!strcmp(s, "none"))
		*c = BLK_CACHE_NONE;
	else if (!strcmp(s, "unsafe"))
		*c = BLK_CACHE_UNSAFE;
	else
		return fail("unknown cache mode '%s' (writeback, none, unsafe)", s);
	return 0;
}

/* -o key=value,... for create and convert. */
static int parse_create_opts(char *opts, struct blk_create_opts *o)
{
	char *save = NULL;
	for (char *kv = strtok_r(opts, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (!v)
			return fail("option '%s' needs a value", kv);
		*v++ = 0;
		uint64_t n;
		if (!strcmp(kv, "cluster_size")) {
			if (size_parse(v, 1, &n) < 0 || n < 512 || n > (2u << 20) || (n & (n - 1)))
				return fail("cluster_size must be a power of two from 512 to 2M");
			o->cluster_size = (uint32_t)n;
		} else if (!strcmp(kv, "compression_type")) {
			if (!strcmp(v, "zlib"))
				o->compression_type = 0;
			else if (!strcmp(v, "zstd"))
				o->compression_type = 1;
			else
				return fail("compression_type must be zlib or zstd");
		} else if (!strcmp(kv, "refcount_bits")) {
			if (size_parse(v, 1, &n) < 0 || n > 64)
				return fail("bad refcount_bits '%s'", v);
			o->refcount_bits = (int)n;
		} else if (!strcmp(kv, "compat")) {
			if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
				o->version = 2;
			else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
				o->version = 3;
			else
				return fail("compat must be 0.10 or 1.1");
		} else if (!strcmp(kv, "lazy_refcounts")) {
			o->lazy_refcounts = !strcmp(v, "on") || !strcmp(v, "true");
		} else if (!strcmp(kv, "backing_file")) {
			o->backing_file = v;
		} else if (!strcmp(kv, "backing_fmt")) {
			o->backing_format = v;
		} else if (!strcmp(kv, "preallocation")) {
			int m = blk_prealloc_parse(v);
			if (m < 0)
				return fail(
				    "preallocation must be off, metadata, falloc or full, not "
				    "'%s'",
				    v);
			o->prealloc = (enum blk_prealloc)m;
		} else {
			return fail("unknown option '%s'", kv);
		}
	}
	return 0;
}

/* ---- create ---- */

static int img_create(int argc, char **argv)
{
	struct blk_create_opts o = {.format = BLK_FMT_RAW};
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:b:F:o:h")) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &o.format))
				return 1;
			break;
		case 'b':
			o.backing_file = optarg;
			break;
		case 'F':
			if (parse_backing_fmt(optarg, &o.backing_format))
				return 1;
			break;
		case 'o':
			if (parse_create_opts(optarg, &o))
				return 1;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return fail("create: missing FILE");
	const char *path = argv[optind];
	bool have_size = optind + 1 < argc;
	if (have_size && size_parse(argv[optind + 1], 1, &o.size) < 0)
		return fail("create: invalid size '%s'", argv[optind + 1]);
	if (o.backing_file && o.format != BLK_FMT_QCOW2)
		return fail("create: only qcow2 images can have a backing file");
	if (o.backing_file && !have_size) {
		/* Default to the backing file's size. */
		char full[4096];
		if (o.backing_file[0] != '/' && strchr(path, '/'))
			snprintf(full, sizeof(full), "%.*s/%s", (int)(strrchr(path, '/') - path),
				 path, o.backing_file);
		else
			snprintf(full, sizeof(full), "%s", o.backing_file);
		struct blk_open_opts bo = {.readonly = true};
		if (o.backing_format)
			bo.format = blk_format_parse(o.backing_format);
		struct blk *bk;
		int ret = blk_open(&bk, full, &bo);
		if (ret < 0)
			return fail_blk("create: cannot open backing file", full, ret);
		o.size = blk_size(bk);
		blk_close(bk);
		have_size = true;
	}
	if (!have_size)
		return fail("create: missing SIZE");
	int ret = blk_create(path, &o);
	if (ret < 0)
		return fail_blk("create", path, ret);
	char sz[32];
	printf("Formatting '%s', fmt=%s size=%" PRIu64 " (%s)%s%s\n", path,
	       o.format == BLK_FMT_QCOW2 ? "qcow2" : "raw", o.size,
	       size_format(o.size, sz, sizeof(sz)), o.prealloc ? " preallocation=" : "",
	       o.prealloc ? blk_prealloc_name(o.prealloc) : "");
	return 0;
}

/* ---- info ---- */

static void format_date(uint32_t sec, char *buf, size_t n)
{
	time_t t = sec;
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static void format_clock(uint64_t ns, char *buf, size_t n)
{
	uint64_t ms = ns / 1000000;
	snprintf(buf, n, "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64, ms / 3600000,
		 (ms / 60000) % 60, (ms / 1000) % 60, ms % 1000);
}

/* The snapshot table as qemu-img prints it (info and snapshot -l). */
static void snapshot_table(const struct blk_snapshot_info *l, int n)
{
	printf("Snapshot list:\n");
	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
	for (int k = 0; k < n; k++) {
		char date[32], clk[32], vs[32], ic[24] = "";
		format_date(l[k].date_sec, date, sizeof(date));
		format_clock(l[k].vm_clock_nsec, clk, sizeof(clk));
		if (l[k].icount != UINT64_MAX)
			snprintf(ic, sizeof(ic), "%" PRIu64, l[k].icount);
		printf("%-9s %-16s %8s%20s%13s%11s\n", l[k].id, l[k].name,
		       size_format(l[k].vm_state_size, vs, sizeof(vs)), date, clk, ic);
	}
}

static json_object *info_json(struct blk *b, const struct blk_info *i)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "filename", json_object_new_string(blk_path(b)));
	json_object_object_add(o, "format", json_object_new_string(i->format));
	json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)i->virtual_size));
	json_object_object_add(o, "actual-size", json_object_new_int64((int64_t)i->disk_size));
	if (i->cluster_size)
		json_object_object_add(o, "cluster-size", json_object_new_int64(i->cluster_size));
	json_object_object_add(o, "dirty-flag", json_object_new_boolean(i->dirty));
	if (i->backing_file) {
		json_object_object_add(o, "backing-filename",
				       json_object_new_string(i->backing_file));
		if (i->backing_format)
			json_object_object_add(o, "backing-filename-format",
					       json_object_new_string(i->backing_format));
	}
	if (i->qcow2_version) {
		json_object *f = json_object_new_object();
		json_object_object_add(
		    f, "compat", json_object_new_string(i->qcow2_version == 3 ? "1.1" : "0.10"));
		json_object_object_add(f, "compression-type",
				       json_object_new_string(i->compression));
		json_object_object_add(f, "lazy-refcounts",
				       json_object_new_boolean(i->lazy_refcounts));
		json_object_object_add(f, "refcount-bits", json_object_new_int(i->refcount_bits));
		json_object_object_add(f, "corrupt", json_object_new_boolean(i->corrupt));
		json_object_object_add(f, "extended-l2", json_object_new_boolean(false));
		json_object *fs = json_object_new_object();
		json_object_object_add(fs, "type", json_object_new_string("qcow2"));
		json_object_object_add(fs, "data", f);
		json_object_object_add(o, "format-specific", fs);
	}
	struct blk_snapshot_info *snaps = NULL;
	int n = i->nb_snapshots ? blk_snapshot_list(b, &snaps) : 0;
	if (n > 0) {
		json_object *a = json_object_new_array();
		for (int k = 0; k < n; k++) {
			json_object *s = json_object_new_object();
			json_object_object_add(s, "id", json_object_new_string(snaps[k].id));
			json_object_object_add(s, "name", json_object_new_string(snaps[k].name));
			json_object_object_add(
			    s, "vm-state-size",
			    json_object_new_int64((int64_t)snaps[k].vm_state_size));
			json_object_object_add(s, "date-sec",
					       json_object_new_int64(snaps[k].date_sec));
			json_object_object_add(s, "date-nsec",
					       json_object_new_int64(snaps[k].date_nsec));
			/* as qemu-img: the VM clock in seconds and nanoseconds */
			json_object_object_add(
			    s, "vm-clock-sec",
			    json_object_new_int64((int64_t)(snaps[k].vm_clock_nsec / 1000000000)));
			json_object_object_add(
			    s, "vm-clock-nsec",
			    json_object_new_int64((int64_t)(snaps[k].vm_clock_nsec % 1000000000)));
			if (snaps[k].icount != UINT64_MAX)
				json_object_object_add(
				    s, "icount", json_object_new_int64((int64_t)snaps[k].icount));
			json_object_array_add(a, s);
		}
		json_object_object_add(o, "snapshots", a);
	}
	free(snaps);
	return o;
}

static void info_human(struct blk *b, const struct blk_info *i)
{
	char a[32], d[32];
	printf("image: %s\n", blk_path(b));
	printf("file format: %s\n", i->format);
	printf("virtual size: %s (%" PRIu64 " bytes)\n", size_format(i->virtual_size, a, sizeof(a)),
	       i->virtual_size);
	printf("disk size: %s\n", size_format(i->disk_size, d, sizeof(d)));
	if (i->cluster_size)
		printf("cluster_size: %u\n", i->cluster_size);
	if (i->backing_file) {
		printf("backing file: %s\n", i->backing_file);
		if (i->backing_format)
			printf("backing file format: %s\n", i->backing_format);
	}
	struct blk_snapshot_info *snaps = NULL;
	int n = i->nb_snapshots ? blk_snapshot_list(b, &snaps) : 0;
	if (n > 0)
		snapshot_table(snaps, n);
	free(snaps);
	if (i->qcow2_version) {
		printf("Format specific information:\n");
		printf("    compat: %s\n", i->qcow2_version == 3 ? "1.1" : "0.10");
		printf("    compression type: %s\n", i->compression);
		printf("    lazy refcounts: %s\n", i->lazy_refcounts ? "true" : "false");
		printf("    refcount bits: %u\n", i->refcount_bits);
		printf("    corrupt: %s\n", i->corrupt ? "true" : "false");
		printf("    dirty: %s\n", i->dirty ? "true" : "false");
		printf("    extended l2: false\n");
	}
}

static int img_info(int argc, char **argv)
{
	struct blk_open_opts oo = {.readonly = true, .no_backing = true};
	bool json = false, chain = false;
	static const struct option lo[] = {{"output", required_argument, NULL, 'O'},
					   {"backing-chain", no_argument, NULL, 'B'},
					   {"force-share", no_argument, NULL, 'U'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:Uh", lo, NULL)) != -1) {
		switch (c) {
		case 'U':
			oo.force_share = true;
			break;
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'O':
			if (strcmp(optarg, "json") && strcmp(optarg, "human"))
				return fail("--output must be human or json");
			json = !strcmp(optarg, "json");
			break;
		case 'B':
			chain = true;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return fail("info: missing FILE");
	const char *path = argv[optind];
	struct blk *b;
	int ret;
	/* The whole chain is opened so a broken or looping chain is reported; without
	 * --backing-chain a broken chain is a warning and the image itself is still shown. */
	oo.no_backing = false;
	ret = blk_open(&b, path, &oo);
	if (ret < 0 && !chain) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", blk_last_error());
		oo.no_backing = true;
		if (blk_open(&b, path, &oo) == 0) {
			fprintf(stderr, "kestrel img: warning: backing chain: %s\n", msg);
			ret = 0;
		} else {
			ret = -EINVAL;
			blk_set_error("%s", msg);
		}
	}
	if (ret < 0)
		return fail_blk("info", path, ret);
	json_object *arr = chain && json ? json_object_new_array() : NULL;
	int k = 0;
	for (struct blk *l = b; l; l = blk_backing(l), k++) {
		struct blk_info i;
		blk_get_info(l, &i);
		if (json) {
			json_object *o = info_json(l, &i);
			if (arr) {
				json_object_array_add(arr, o);
			} else {
				/* Without --backing-chain: this image, with the chain as a list. */
				json_object *bc = json_object_new_array();
				for (struct blk *x = blk_backing(l); x; x = blk_backing(x)) {
					json_object *e = json_object_new_object();
					json_object_object_add(e, "filename",
							       json_object_new_string(blk_path(x)));
					json_object_object_add(
					    e, "format",
					    json_object_new_string(blk_format_name(x)));
					json_object_array_add(bc, e);
				}
				json_object_object_add(o, "backing-chain", bc);
				printf("%s\n",
				       json_object_to_json_string_ext(
					   o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE));
				json_object_put(o);
			}
		} else {
			if (k)
				printf("\n");
			info_human(l, &i);
			if (!chain && blk_backing(l)) {
				printf("backing chain:");
				for (struct blk *x = blk_backing(l); x; x = blk_backing(x))
					printf(" %s (%s)", blk_path(x), blk_format_name(x));
				printf("\n");
			}
		}
		if (!chain)
			break;
	}
	if (arr) {
		printf("%s\n", json_object_to_json_string_ext(
				   arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	}
	blk_close(b);
	return 0;
}

/* ---- check ---- */

static int img_check(int argc, char **argv)
{
	struct blk_open_opts oo = {.readonly = true, .no_backing = true, .check = true};
	unsigned fix = 0;
	bool json = false;
	static const struct option lo[] = {{"output", required_argument, NULL, 'O'},
					   {"force-share", no_argument, NULL, 'U'},
					   {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:r:Uh", lo, NULL)) != -1) {
		switch (c) {
		case 'U':
			oo.force_share = true;
			break;
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = BLK_CHECK_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS;
			else
				return fail("-r must be leaks or all");
			oo.readonly = false;
			break;
		case 'O':
			json = !strcmp(optarg, "json");
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return fail("check: missing FILE");
	if (oo.force_share && !oo.readonly)
		return fail("check: -U (force-share) cannot be used with -r (a repair writes)");
	const char *path = argv[optind];
	struct blk *b;
	int ret = blk_open(&b, path, &oo);
	if (ret < 0) {
		fail_blk("check", path, ret);
		return 1;
	}
	struct blk_check_result r;
	ret = blk_check(b, fix, &r);
	if (ret < 0) {
		fail_blk("check failed", path, ret);
		blk_close(b);
		return 1;
	}
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "filename", json_object_new_string(path));
		json_object_object_add(o, "format", json_object_new_string(blk_format_name(b)));
		json_object_object_add(o, "check-errors",
				       json_object_new_int64((int64_t)r.check_errors));
		json_object_object_add(o, "corruptions",
				       json_object_new_int64((int64_t)r.corruptions));
		json_object_object_add(o, "leaks", json_object_new_int64((int64_t)r.leaks));
		json_object_object_add(o, "corruptions-fixed",
				       json_object_new_int64((int64_t)r.corruptions_fixed));
		json_object_object_add(o, "leaks-fixed",
				       json_object_new_int64((int64_t)r.leaks_fixed));
		json_object_object_add(o, "allocated-clusters",
				       json_object_new_int64((int64_t)r.allocated_clusters));
		json_object_object_add(o, "total-clusters",
				       json_object_new_int64((int64_t)r.total_clusters));
		json_object_object_add(o, "compressed-clusters",
				       json_object_new_int64((int64_t)r.compressed_clusters));
		json_object_object_add(o, "image-end-offset",
				       json_object_new_int64((int64_t)r.image_end_offset));
		printf("%s\n", json_object_to_json_string_ext(
				   o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		if (r.leaks_fixed || r.corruptions_fixed)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       r.leaks_fixed, r.corruptions_fixed);
		if (!r.corruptions && !r.leaks && !r.check_errors)
			printf("No errors were found on the image.\n");
		if (r.corruptions)
			printf("\n%" PRIu64 " errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the image may corrupt "
			       "it.\n",
			       r.corruptions);
		if (r.leaks)
			printf("\n%" PRIu64 " leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to data.\n",
			       r.leaks);
		if (r.check_errors)
			printf("\n%" PRIu64 " internal errors have occurred during the check.\n",
			       r.check_errors);
		if ((fix & BLK_CHECK_FIX_ERRORS) && r.corruptions)
			printf("%" PRIu64 " of the errors cannot be repaired by -r all (pointers "
			       "outside the image or into its metadata); 'kestrel img convert' "
			       "copies out what can still be read.\n",
			       r.corruptions);
		if (r.total_clusters)
			printf("%" PRIu64 "/%" PRIu64
			       " = %.2f%% allocated, %.2f%% compressed clusters\n"
			       "Image end offset: %" PRIu64 "\n",
			       r.allocated_clusters, r.total_clusters,
			       100.0 * (double)r.allocated_clusters / (double)r.total_clusters,
			       r.allocated_clusters ? 100.0 * (double)r.compressed_clusters /
							  (double)r.allocated_clusters
						    : 0.0,
			       r.image_end_offset);
	}
	blk_close(b);
	if (r.check_errors)
		return 1;
	if (r.corruptions)
		return 2;
	if (r.leaks)
		return 3;
	return 0;
}

/* ---- resize ---- */

static int img_resize(int argc, char **argv)
{
	struct blk_open_opts oo = {0};
	bool shrink = false;
	static const struct option lo[] = {{"shrink", no_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	/* "-1G" is a size, not an option: stop at the first non-option. */
	while ((c = getopt_long(argc, argv, "+f:h", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'S':
			shrink = true;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind + 2 != argc)
		return fail("resize: usage: resize FILE [+|-]SIZE");
	const char *path = argv[optind], *arg = argv[optind + 1];
	int sign = 0;
	if (*arg == '+' || *arg == '-')
		sign = *arg++ == '+' ? 1 : -1;
	uint64_t v;
	if (size_parse(arg, 1, &v) < 0)
		return fail("resize: invalid size '%s'", argv[optind + 1]);
	struct blk *b;
	int ret = blk_open(&b, path, &oo);
	if (ret < 0)
		return fail_blk("resize", path, ret);
	uint64_t cur = blk_size(b), ns = v;
	if (sign > 0)
		ns = cur + v;
	else if (sign < 0) {
		if (v > cur) {
			blk_close(b);
			return fail("resize: cannot shrink below zero");
		}
		ns = cur - v;
	}
	if (ns < cur && !shrink) {
		blk_close(b);
		return fail("resize: shrinking loses data; use --shrink if you mean it");
	}
	ret = blk_resize(b, ns);
	if (ret == 0)
		ret = blk_flush(b);
	if (ret < 0) {
		fail_blk("resize", path, ret);
		blk_close(b);
		return 1;
	}
	blk_close(b);
	printf("Image resized.\n");
	return 0;
}

/* ---- map ---- */

struct map_ent {
	uint64_t start, len, offset;
	int depth;
	unsigned flags;
	const char *file;
	bool present;
};

static bool map_mergeable(const struct map_ent *a, const struct map_ent *b)
{
	if (a->depth != b->depth || a->flags != b->flags || a->file != b->file ||
	    a->present != b->present)
		return false;
	if (a->flags & BLK_STATUS_OFFSET)
		return a->offset + a->len == b->offset;
	return true;
}

static void map_print(const struct map_ent *e, bool json, bool *first)
{
	bool present = e->present;
	if (json) {
		printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, "
		       "\"present\": %s, \"zero\": %s, \"data\": %s, \"compressed\": %s",
		       *first ? "[" : ",\n", e->start, e->len, e->depth, present ? "true" : "false",
		       (e->flags & BLK_STATUS_ZERO) ? "true" : "false",
		       (e->flags & BLK_STATUS_DATA) ? "true" : "false",
		       (e->flags & BLK_STATUS_COMPRESSED) ? "true" : "false");
		if (e->flags & BLK_STATUS_OFFSET)
			printf(", \"offset\": %" PRIu64, e->offset);
		printf("}");
	} else if (e->flags & BLK_STATUS_DATA) {
		if (*first)
			printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
		if (e->flags & BLK_STATUS_OFFSET)
			printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start,
			       e->len, e->offset, e->file);
		else
			printf("%#-16" PRIx64 "%#-16" PRIx64 "%-16s%s\n", e->start, e->len,
			       "compressed", e->file);
	} else {
		return;
	}
	*first = false;
}

static int img_map(int argc, char **argv)
{
	struct blk_open_opts oo = {.readonly = true};
	bool json = false;
	static const struct option lo[] = {{"output", required_argument, NULL, 'O'},
					   {"force-share", no_argument, NULL, 'U'},
					   {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:Uh", lo, NULL)) != -1) {
		switch (c) {
		case 'U':
			oo.force_share = true;
			break;
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'O':
			json = !strcmp(optarg, "json");
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return fail("map: missing FILE");
	const char *path = argv[optind];
	struct blk *b;
	int ret = blk_open(&b, path, &oo);
	if (ret < 0)
		return fail_blk("map", path, ret);
	uint64_t size = blk_size(b), off = 0;
	struct map_ent cur = {0};
	bool have = false, first = true;
	while (off < size) {
		struct blk_status st;
		ret = blk_chain_status(b, off, size - off, &st);
		if (ret < 0) {
			fail_blk("map", path, ret);
			blk_close(b);
			return 1;
		}
		struct blk *layer = b;
		for (int d = 0; d < st.depth && blk_backing(layer); d++)
			layer = blk_backing(layer);
		unsigned fl = st.flags & (BLK_STATUS_DATA | BLK_STATUS_ZERO | BLK_STATUS_OFFSET |
					  BLK_STATUS_COMPRESSED);
		struct map_ent e = {off,
				    st.len,
				    st.host_offset,
				    st.depth,
				    fl,
				    blk_path(layer),
				    (st.flags & BLK_STATUS_ALLOCATED) != 0};
		if (have && map_mergeable(&cur, &e)) {
			cur.len += e.len;
		} else {
			if (have)
				map_print(&cur, json, &first);
			cur = e;
			have = true;
		}
		off += st.len;
	}
	if (have)
		map_print(&cur, json, &first);
	if (json)
		printf(first ? "[]\n" : "]\n");
	blk_close(b);
	return 0;
}

/* ---- snapshot ---- */

static int img_snapshot(int argc, char **argv)
{
	int op = 0;
	const char *name = NULL;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "lc:a:d:h")) != -1) {
		switch (c) {
		case 'l':
		case 'c':
		case 'a':
		case 'd':
			if (op)
				return fail("snapshot: give one of -l, -c, -a, -d");
			op = c;
			name = optarg;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (!op || optind >= argc)
		return fail("snapshot: usage: snapshot -l|-c NAME|-a NAME|-d NAME FILE");
	const char *path = argv[optind];
	struct blk_open_opts oo = {.readonly = op == 'l', .no_backing = true};
	struct blk *b;
	int ret = blk_open(&b, path, &oo);
	if (ret < 0)
		return fail_blk("snapshot", path, ret);
	if (op == 'l') {
		struct blk_snapshot_info *l;
		int n = blk_snapshot_list(b, &l);
		if (n < 0) {
			fail_blk("snapshot", path, n);
			blk_close(b);
			return 1;
		}
		if (n > 0)
			snapshot_table(l, n);
		free(l);
		ret = 0;
	} else if (op == 'c') {
		ret = blk_snapshot_create(b, name);
	} else if (op == 'a') {
		ret = blk_snapshot_apply(b, name);
	} else {
		ret = blk_snapshot_delete(b, name);
	}
	if (ret == 0 && op != 'l')
		ret = blk_flush(b);
	if (ret < 0) {
		fail_blk("snapshot", path, ret);
		blk_close(b);
		return 1;
	}
	blk_close(b);
	return 0;
}

/* ---- copy helpers ---- */

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];
	while (n >= sizeof(z)) {
		if (memcmp(p, z, sizeof(z)))
			return false;
		p += sizeof(z);
		n -= sizeof(z);
	}
	return n == 0 || !memcmp(p, z, n);
}

static char *backing_path_of(const char *top, const char *name)
{
	char *p = malloc(strlen(top) + strlen(name) + 2);
	if (!p)
		return NULL;
	if (name[0] != '/' && strchr(top, '/'))
		sprintf(p, "%.*s/%s", (int)(strrchr(top, '/') - top), top, name);
	else
		strcpy(p, name);
	return p;
}

/* ---- commit ---- */

static int img_commit(int argc, char **argv)
{
	struct blk_open_opts oo = {.no_backing = true};
	bool keep = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:dh")) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'd':
			keep = true;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return fail("commit: missing FILE");
	const char *path = argv[optind];
	struct blk *top, *base;
	int ret = blk_open(&top, path, &oo);
	if (ret < 0)
		return fail_blk("commit", path, ret);
	struct blk_info ti;
	blk_get_info(top, &ti);
	if (!ti.backing_file) {
		blk_close(top);
		return fail("commit: %s has no backing file", path);
	}
	char *bpath = backing_path_of(path, ti.backing_file);
	struct blk_open_opts bo = {0};
	if (ti.backing_format)
		bo.format = blk_format_parse(ti.backing_format);
	ret = bpath ? blk_open(&base, bpath, &bo) : -ENOMEM;
	if (ret < 0) {
		fail_blk("commit: cannot open backing file", bpath ? bpath : "", ret);
		free(bpath);
		blk_close(top);
		return 1;
	}
	uint64_t size = blk_size(top);
	if (blk_size(base) < size) {
		ret = blk_resize(base, size);
		if (ret < 0)
			goto err;
	}
	uint8_t *buf = malloc(CONVERT_CHUNK);
	if (!buf) {
		ret = -ENOMEM;
		goto err;
	}
	for (uint64_t off = 0; off < size;) {
		struct blk_status st;
		ret = blk_block_status(
		    top, off, size - off < CONVERT_CHUNK ? size - off : CONVERT_CHUNK, &st);
		if (ret < 0)
			break;
		if (st.flags & BLK_STATUS_ALLOCATED) {
			if (st.flags & BLK_STATUS_ZERO) {
				ret = blk_write_zeroes(base, off, st.len, 0);
			} else {
				ret = blk_pread(top, off, buf, st.len);
				if (ret == 0)
					ret = blk_pwrite(base, off, buf, st.len);
			}
			if (ret < 0)
				break;
		}
		off += st.len;
	}
	free(buf);
	if (ret == 0)
		ret = blk_flush(base);
	if (ret == 0 && !keep)
		ret = blk_make_empty(top);
	if (ret == 0)
		ret = blk_flush(top);
	if (ret < 0)
		goto err;
	blk_close(base);
	blk_close(top);
	free(bpath);
	printf("Image committed.\n");
	return 0;
err:
	fail_blk("commit", path, ret);
	blk_close(base);
	blk_close(top);
	free(bpath);
	return 1;
}

/* ---- rebase ---- */

static int img_rebase(int argc, char **argv)
{
	struct blk_open_opts oo = {0};
	bool unsafe = false;
	const char *nb = NULL, *nf = NULL;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:ub:F:h")) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'u':
			unsafe = true;
			break;
		case 'b':
			nb = optarg;
			break;
		case 'F':
			if (parse_backing_fmt(optarg, &nf))
				return 1;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc || !nb)
		return fail("rebase: usage: rebase [-u] -b BACKING [-F FMT] FILE");
	const char *path = argv[optind];
	oo.no_backing = unsafe;
	struct blk *top, *newb = NULL;
	int ret = blk_open(&top, path, &oo);
	if (ret < 0)
		return fail_blk("rebase", path, ret);
	if (!unsafe && *nb) {
		char *p = backing_path_of(path, nb);
		struct blk_open_opts bo = {.readonly = true};
		if (nf)
			bo.format = blk_format_parse(nf);
		ret = p ? blk_open(&newb, p, &bo) : -ENOMEM;
		if (ret < 0) {
			fail_blk("rebase: cannot open new backing file", p ? p : nb, ret);
			free(p);
			blk_close(top);
			return 1;
		}
		free(p);
	}
	if (!unsafe) {
		/* Where the top image shows its backing file, keep what it shows now. */
		uint64_t size = blk_size(top);
		uint32_t cs = blk_cluster_size(top);
		uint64_t chunk = cs ? cs : 65536;
		if (chunk < 65536)
			chunk = 65536;
		uint8_t *a = malloc(chunk), *bb = malloc(chunk);
		ret = a && bb ? 0 : -ENOMEM;
		for (uint64_t off = 0; off < size && ret == 0;) {
			uint64_t n = size - off < chunk ? size - off : chunk;
			struct blk_status st;
			ret = blk_block_status(top, off, n, &st);
			if (ret < 0)
				break;
			n = st.len;
			if (!(st.flags & BLK_STATUS_ALLOCATED)) {
				ret = blk_pread(top, off, a, n);
				memset(bb, 0, n);
				if (ret == 0 && newb && off < blk_size(newb))
					ret = blk_pread(
					    newb, off, bb,
					    off + n <= blk_size(newb) ? n : blk_size(newb) - off);
				if (ret == 0 && memcmp(a, bb, n))
					ret = blk_pwrite(top, off, a, n);
			}
			off += n;
		}
		free(a);
		free(bb);
		if (ret == 0)
			ret = blk_flush(top);
	}
	if (ret == 0)
		ret =
		    blk_set_backing(top, *nb ? nb : NULL,
				    *nb ? (nf ? nf : (newb ? blk_format_name(newb) : NULL)) : NULL);
	if (ret < 0)
		fail_blk("rebase", path, ret);
	blk_close(newb);
	blk_close(top);
	return ret < 0 ? 1 : 0;
}

/* ---- convert ---- */

struct progress {
	bool on, tty;
	uint64_t total, done;
	double t0, last;
	int last_pct;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_update(struct progress *p, uint64_t done, bool final)
{
	if (!p->on)
		return;
	p->done = done;
	double t = now();
	double pct = p->total ? 100.0 * (double)done / (double)p->total : 100.0;
	if (p->tty) {
		if (!final && t - p->last < 0.1)
			return;
		p->last = t;
		double el = t - p->t0;
		double rate = el > 0 ? (double)done / el : 0;
		char rs[32];
		size_format((uint64_t)rate, rs, sizeof(rs));
		char eta[32] = "--:--";
		if (rate > 0 && done < p->total) {
			uint64_t s = (uint64_t)((double)(p->total - done) / rate);
			snprintf(eta, sizeof(eta), "%02" PRIu64 ":%02" PRIu64, s / 60, s % 60);
		} else if (done >= p->total) {
			snprintf(eta, sizeof(eta), "00:00");
		}
		int w = 30, fillw = (int)(pct / 100.0 * w);
		char bar[64];
		for (int i = 0; i < w; i++)
			bar[i] = i < fillw ? '#' : '-';
		bar[w] = 0;
		fprintf(stdout, "\r[%s] %6.2f%%  %s/s  ETA %s ", bar, pct, rs, eta);
		if (final)
			fputc('\n', stdout);
		fflush(stdout);
	} else {
		int ip = (int)pct;
		if (ip != p->last_pct || (final && ip != p->last_pct)) {
			p->last_pct = ip;
			fprintf(stdout, "%d%%\n", ip);
			fflush(stdout);
		}
	}
}

/* Copies SRC into DST in whole output clusters of OCS bytes, compressed: a cluster is data
 * if any byte of it is, and the tail cluster at the end of the image is padded with zeros.
 * OCS divides CHUNK, the size of BUF. ZERO_FILL (convert -n: DST has content of its own)
 * zeroes the clusters that are zero in SRC instead of skipping them. */
static int convert_compressed(struct blk *src, struct blk *dst, uint8_t *buf, uint64_t chunk,
			      uint64_t ocs, bool zero_fill, struct progress *pr)
{
	uint64_t size = blk_size(src), dsize = blk_size(dst);
	int ret = 0;
	for (uint64_t off = 0; off < size && ret == 0;) { /* OFF stays cluster aligned */
		uint64_t n = size - off < chunk ? size - off : chunk;
		struct blk_status st;
		ret = blk_chain_status(src, off, n, &st);
		if (ret < 0)
			break;
		if (st.flags & BLK_STATUS_ZERO) {
			/* Whole zero clusters are skipped (the new image reads zeros there). */
			uint64_t skip = off + st.len >= size ? size - off : st.len / ocs * ocs;
			if (skip && zero_fill)
				ret = blk_write_zeroes(dst, off, skip, BLK_ZERO_MAY_UNMAP);
			if (skip) {
				off += skip;
				progress_update(pr, off, false);
				continue;
			}
			st.len = 1; /* zeros then data within this cluster */
		}
		/* The data extent, widened to whole clusters. */
		uint64_t want = (st.len + ocs - 1) / ocs * ocs;
		if (n > want)
			n = want;
		ret = blk_pread(src, off, buf, n);
		for (uint64_t k = 0; k < n && ret == 0; k += ocs) {
			uint64_t len = n - k < ocs ? n - k : ocs;
			if (all_zero(buf + k, len)) {
				if (zero_fill)
					ret =
					    blk_write_zeroes(dst, off + k, len, BLK_ZERO_MAY_UNMAP);
				continue;
			}
			if (len <
			    ocs) { /* the source's tail: pad up to the cluster or the disk end */
				uint64_t pad = dsize - (off + k) < ocs ? dsize - (off + k) : ocs;
				memset(buf + k + len, 0, pad - len);
				len = pad;
			}
			ret = blk_pwrite_compressed(dst, off + k, buf + k, len);
		}
		off += n;
		progress_update(pr, off, false);
	}
	return ret;
}

/* Copies SRC into DST, skipping zero extents and zero runs of at least MIN_SPARSE bytes
 * (ZERO_FILL, for convert -n: zeroing them in DST). */
static int convert_plain(struct blk *src, struct blk *dst, uint8_t *buf, uint64_t chunk,
			 uint64_t min_sparse, bool zero_fill, struct progress *pr)
{
	uint64_t size = blk_size(src);
	int ret = 0;
	for (uint64_t off = 0; off < size && ret == 0;) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		struct blk_status st;
		ret = blk_chain_status(src, off, n, &st);
		if (ret < 0)
			break;
		n = st.len;
		if (st.flags & BLK_STATUS_ZERO) {
			/* a new image reads zeros there already */
			if (zero_fill)
				ret = blk_write_zeroes(dst, off, n, BLK_ZERO_MAY_UNMAP);
			off += n;
			progress_update(pr, off, false);
			continue;
		}
		ret = blk_pread(src, off, buf, n);
		uint64_t k = 0;
		while (k < n && ret == 0) {
			uint64_t g = min_sparse - ((off + k) % min_sparse);
			if (g > n - k)
				g = n - k;
			if (all_zero(buf + k, g)) {
				if (zero_fill)
					ret = blk_write_zeroes(dst, off + k, g, BLK_ZERO_MAY_UNMAP);
				k += g;
				continue;
			}
			uint64_t e = k + g;
			while (e < n) {
				uint64_t g2 = n - e < min_sparse ? n - e : min_sparse;
				if (all_zero(buf + e, g2))
					break;
				e += g2;
			}
			ret = blk_pwrite(dst, off + k, buf + k, e - k);
			k = e;
		}
		off += n;
		progress_update(pr, off, false);
	}
	return ret;
}

/* Copies SRC into DST, which reads its backing file where it is empty (convert -B): only
 * the clusters of OCS bytes where SRC reads differently from what DST reads now are
 * written, zeros as zero clusters, data compressed with COMPRESS. CUR, like BUF, holds
 * CHUNK bytes, a multiple of OCS. */
static int convert_diff(struct blk *src, struct blk *dst, uint8_t *buf, uint8_t *cur,
			uint64_t chunk, uint64_t ocs, bool compress, struct progress *pr)
{
	uint64_t size = blk_size(src);
	int ret = 0;
	for (uint64_t off = 0; off < size && ret == 0;) { /* OFF stays cluster aligned */
		uint64_t n = size - off < chunk ? size - off : chunk;
		struct blk_status st;
		ret = blk_chain_status(src, off, n, &st);
		if (ret < 0)
			break;
		bool zero = st.flags & BLK_STATUS_ZERO;
		uint64_t want = zero ? st.len / ocs * ocs : (st.len + ocs - 1) / ocs * ocs;
		if (zero && off + st.len >= size)
			want = size - off;
		if (want == 0) { /* zeros, then data, within this cluster */
			zero = false;
			want = ocs;
		}
		if (n > want)
			n = want;
		if (zero)
			memset(buf, 0, n);
		else
			ret = blk_pread(src, off, buf, n);
		if (ret == 0)
			ret = blk_pread(dst, off, cur, n);
		for (uint64_t k = 0; k < n && ret == 0; k += ocs) {
			uint64_t len = n - k < ocs ? n - k : ocs;
			if (!memcmp(buf + k, cur + k, len))
				continue;
			if (zero || all_zero(buf + k, len))
				ret = blk_write_zeroes(dst, off + k, len, 0);
			else if (compress)
				ret = blk_pwrite_compressed(dst, off + k, buf + k, len);
			else
				ret = blk_pwrite(dst, off + k, buf + k, len);
		}
		off += n;
		progress_update(pr, off, false);
	}
	return ret;
}

/* The format of BACKING (named as OUT would store it) for -B without -F: probed now and
 * stored, so the new image does not depend on probing later. */
static int probe_backing_format(const char *out, const char *backing, const char **fmt)
{
	char *p = backing_path_of(out, backing);
	if (!p)
		return fail("convert: out of memory");
	struct blk *b;
	int ret = blk_open(&b, p, &(struct blk_open_opts){.readonly = true, .no_backing = true});
	if (ret < 0) {
		fail_blk("convert: cannot open backing file", p, ret);
		free(p);
		return 1;
	}
	*fmt = blk_format_name(b); /* a static driver name, valid after close */
	blk_close(b);
	free(p);
	return 0;
}

static int img_convert(int argc, char **argv)
{
	struct blk_open_opts io = {.readonly = true};
	struct blk_create_opts co = {.format = BLK_FMT_RAW};
	enum blk_cache cache = BLK_CACHE_WRITEBACK;
	bool compress = false, no_create = false, have_opts = false, out_fmt = false;
	const char *base = NULL, *base_fmt = NULL;
	uint64_t min_sparse = 4096;
	struct progress pr = {0};
	int c;
	optind = 1;
	static const struct option lo[] = {{"force-share", no_argument, NULL, 'U'},
					   {NULL, 0, NULL, 0}};
	while ((c = getopt_long(argc, argv, "pf:O:cS:o:t:UnB:F:h", lo, NULL)) != -1) {
		switch (c) {
		case 'U':
			io.force_share = true;
			break;
		case 'p':
			pr.on = true;
			break;
		case 'f':
			if (parse_fmt(optarg, &io.format))
				return 1;
			break;
		case 'O':
			if (parse_fmt(optarg, &co.format))
				return 1;
			out_fmt = true;
			break;
		case 'c':
			compress = true;
			break;
		case 'S':
			if (size_parse(optarg, 1, &min_sparse) < 0)
				return fail("convert: invalid -S size '%s'", optarg);
			break;
		case 'o':
			if (parse_create_opts(optarg, &co))
				return 1;
			have_opts = true;
			break;
		case 't':
			if (parse_cache(optarg, &cache))
				return 1;
			break;
		case 'n':
			no_create = true;
			break;
		case 'B':
			base = optarg;
			break;
		case 'F':
			if (parse_backing_fmt(optarg, &base_fmt))
				return 1;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind + 2 != argc)
		return fail("convert: usage: convert [options] IN OUT");
	const char *in = argv[optind], *out = argv[optind + 1];
	if (compress && co.format != BLK_FMT_QCOW2)
		return fail("convert: -c needs -O qcow2");
	if (no_create && have_opts)
		return fail("convert: -o has no effect when writing into an existing image (-n)");
	if (base && co.backing_file)
		return fail("convert: give the backing file with -B or -o backing_file, not both");
	if (base_fmt && !base)
		return fail("convert: -F names the format of the -B backing file; -B is missing");
	if (base) {
		co.backing_file = base;
		co.backing_format = base_fmt;
	}
	if (co.backing_file && co.format != BLK_FMT_QCOW2 && !no_create)
		return fail("convert: backing files are only for qcow2 output (-O qcow2)");
	if (co.backing_file && !co.backing_format && !no_create &&
	    probe_backing_format(out, co.backing_file, &co.backing_format))
		return 1;
	struct blk *src, *dst;
	int ret = blk_open(&src, in, &io);
	if (ret < 0)
		return fail_blk("convert", in, ret);
	uint64_t size = blk_size(src);
	co.size = size;
	if (!no_create) {
		ret = blk_create(out, &co);
		if (ret < 0) {
			fail_blk("convert", out, ret);
			blk_close(src);
			return 1;
		}
	}
	/* -n without -O: the existing image's own format (qemu-img would take it as raw) */
	struct blk_open_opts oo = {.format = no_create && !out_fmt ? BLK_FMT_PROBE : co.format,
				   .cache = cache};
	ret = blk_open(&dst, out, &oo);
	if (ret < 0) {
		fail_blk("convert", out, ret);
		blk_close(src);
		return 1;
	}
	if (no_create && blk_size(dst) < size) {
		fail("convert: %s is smaller (%" PRIu64 " bytes) than %s (%" PRIu64 " bytes)", out,
		     blk_size(dst), in, size);
		blk_close(dst);
		blk_close(src);
		return 1;
	}
	uint32_t ocs = blk_cluster_size(dst);
	uint64_t chunk = CONVERT_CHUNK;
	if (ocs > chunk)
		chunk = ocs;
	/* -B: only what differs from the backing file; -n into an image with a backing file
	 * alike, as zeros there would not hide it */
	bool diff = blk_backing(dst) && (base || no_create);
	uint8_t *buf = malloc(chunk), *cur = diff ? malloc(chunk) : NULL;
	if (!buf || (diff && !cur)) {
		ret = -ENOMEM;
		goto out;
	}
	if (min_sparse == 0)
		min_sparse = size ? size : 1;
	pr.tty = isatty(STDOUT_FILENO);
	pr.total = size;
	pr.t0 = now();
	pr.last_pct = -1;
	progress_update(&pr, 0, false);
	if (diff)
		ret =
		    convert_diff(src, dst, buf, cur, chunk, ocs ? ocs : 4096, compress && ocs, &pr);
	else if (compress && ocs)
		ret = convert_compressed(src, dst, buf, chunk, ocs, no_create, &pr);
	else
		ret = convert_plain(src, dst, buf, chunk, min_sparse, no_create, &pr);
	if (ret < 0)
		goto out;
	ret = blk_flush(dst);
	progress_update(&pr, size, true);
out:
	free(buf);
	free(cur);
	if (ret < 0)
		fail_blk("convert", out, ret);
	blk_close(dst);
	blk_close(src);
	return ret < 0 ? 1 : 0;
}

/* ---- measure ---- */

static int img_measure(int argc, char **argv)
{
	struct blk_open_opts io = {.readonly = true};
	struct blk_create_opts co = {.format = BLK_FMT_RAW};
	bool json = false, have_size = false;
	static const struct option lo[] = {{"output", required_argument, NULL, 'J'},
					   {"size", required_argument, NULL, 's'},
					   {"force-share", no_argument, NULL, 'U'},
					   {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:O:o:Uh", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &io.format))
				return 1;
			break;
		case 'O':
			if (parse_fmt(optarg, &co.format))
				return 1;
			break;
		case 'o':
			if (parse_create_opts(optarg, &co))
				return 1;
			break;
		case 'U':
			io.force_share = true;
			break;
		case 's':
			if (size_parse(optarg, 1, &co.size) < 0)
				return fail("measure: invalid size '%s'", optarg);
			have_size = true;
			break;
		case 'J':
			if (strcmp(optarg, "json") && strcmp(optarg, "human"))
				return fail("--output must be human or json");
			json = !strcmp(optarg, "json");
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind < argc - 1)
		return fail("measure: give one FILE");
	if (have_size && optind < argc)
		return fail("measure: --size cannot be used together with a FILE");
	if (!have_size && optind >= argc)
		return fail("measure: give --size SIZE or a FILE");
	struct blk *in = NULL;
	if (optind < argc) {
		int ret = blk_open(&in, argv[optind], &io);
		if (ret < 0)
			return fail_blk("measure", argv[optind], ret);
	}
	struct blk_measure m;
	int ret = blk_measure(&co, in, &m);
	const char *what = in ? argv[optind] : "--size";
	blk_close(in);
	if (ret < 0)
		return fail_blk("measure", what, ret);
	if (json) {
		/* laid out as qemu-img prints it */
		printf("{\n");
		if (m.has_bitmaps)
			printf("    \"bitmaps\": %" PRIu64 ",\n", m.bitmaps);
		printf("    \"required\": %" PRIu64 ",\n    \"fully-allocated\": %" PRIu64 "\n}\n",
		       m.required, m.fully_allocated);
	} else {
		printf("required size: %" PRIu64 "\nfully allocated size: %" PRIu64 "\n",
		       m.required, m.fully_allocated);
		if (m.has_bitmaps)
			printf("bitmaps size: %" PRIu64 "\n", m.bitmaps);
	}
	return 0;
}

/* ---- compare ---- */

/* Reports the first byte where A and B differ in [off, off+n), or n. */
static uint64_t first_difference(const uint8_t *a, const uint8_t *b, uint64_t n)
{
	for (uint64_t k = 0; k < n; k += 4096) {
		uint64_t len = n - k < 4096 ? n - k : 4096;
		if (memcmp(a + k, b + k, len))
			for (uint64_t j = k; j < k + len; j++)
				if (a[j] != b[j])
					return j;
	}
	return n;
}

/* Compares [off, end) of A with B (or with zeros when B is NULL): 1 and the sector (512
 * bytes, as qemu-img reports it) of the first difference in *diff if they differ, 0 if not,
 * or -errno. */
static int compare_range(struct blk *a, struct blk *b, uint64_t off, uint64_t end, uint8_t *ba,
			 uint8_t *bb, uint64_t *diff)
{
	while (off < end) {
		uint64_t n = end - off < CONVERT_CHUNK ? end - off : CONVERT_CHUNK;
		struct blk_status sa, sb = {.flags = BLK_STATUS_ZERO, .len = n};
		int ret = blk_chain_status(a, off, n, &sa);
		if (ret == 0 && b)
			ret = blk_chain_status(b, off, n, &sb);
		if (ret < 0)
			return ret;
		n = sa.len < sb.len ? sa.len : sb.len;
		if (!((sa.flags & sb.flags) & BLK_STATUS_ZERO)) {
			ret = blk_pread(a, off, ba, n);
			if (ret == 0 && b)
				ret = blk_pread(b, off, bb, n);
			else if (ret == 0)
				memset(bb, 0, n);
			if (ret < 0)
				return ret;
			uint64_t k = first_difference(ba, bb, n);
			if (k < n) {
				*diff = (off + k) & ~511ull;
				return 1;
			}
		}
		off += n;
	}
	return 0;
}

/* Exit codes as qemu-img compare: 0 identical, 1 different, 2 error. */
static int img_compare(int argc, char **argv)
{
	struct blk_open_opts o1 = {.readonly = true}, o2 = {.readonly = true};
	bool quiet = false;
	static const struct option lo[] = {{"force-share", no_argument, NULL, 'U'},
					   {NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:F:Uqh", lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &o1.format))
				return 2;
			break;
		case 'F':
			if (parse_fmt(optarg, &o2.format))
				return 2;
			break;
		case 'U':
			o1.force_share = o2.force_share = true;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			img_usage(stderr);
			return 2;
		}
	}
	if (optind + 2 != argc) {
		fail("compare: usage: compare [options] FILE1 FILE2");
		return 2;
	}
	const char *p1 = argv[optind], *p2 = argv[optind + 1];
	struct blk *a, *b;
	int ret = blk_open(&a, p1, &o1);
	if (ret < 0) {
		fail_blk("compare", p1, ret);
		return 2;
	}
	ret = blk_open(&b, p2, &o2);
	if (ret < 0) {
		fail_blk("compare", p2, ret);
		blk_close(a);
		return 2;
	}
	uint64_t s1 = blk_size(a), s2 = blk_size(b), common = s1 < s2 ? s1 : s2, diff = 0;
	uint8_t *ba = malloc(CONVERT_CHUNK), *bb = malloc(CONVERT_CHUNK);
	ret = ba && bb ? compare_range(a, b, 0, common, ba, bb, &diff) : -ENOMEM;
	if (ret == 0 && s1 != s2) {
		/* As qemu-img: the longer image's tail must read as zeros. */
		if (!quiet)
			printf("Warning: Image size mismatch!\n");
		ret =
		    compare_range(s1 > s2 ? a : b, NULL, common, s1 > s2 ? s1 : s2, ba, bb, &diff);
	}
	free(ba);
	free(bb);
	int rc;
	if (ret < 0) {
		fail_blk("compare", p1, ret);
		rc = 2;
	} else if (ret == 1) {
		if (!quiet)
			printf("Content mismatch at offset %" PRIu64 "!\n", diff);
		rc = 1;
	} else {
		if (!quiet)
			printf("Images are identical.\n");
		rc = 0;
	}
	blk_close(b);
	blk_close(a);
	return rc;
}

/* ---- bench ---- */

static int img_bench(int argc, char **argv)
{
	struct blk_open_opts oo = {.readonly = true};
	uint64_t count = 1024, bufsize = 1 << 20;
	bool write = false;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "f:wc:s:t:h")) != -1) {
		switch (c) {
		case 'f':
			if (parse_fmt(optarg, &oo.format))
				return 1;
			break;
		case 'w':
			write = true;
			oo.readonly = false;
			break;
		case 'c':
			if (size_parse(optarg, 1, &count) < 0 || !count)
				return fail("bench: invalid count");
			break;
		case 's':
			if (size_parse(optarg, 1, &bufsize) < 0 || !bufsize ||
			    bufsize > (256u << 20))
				return fail("bench: invalid buffer size");
			break;
		case 't':
			if (parse_cache(optarg, &oo.cache))
				return 1;
			break;
		default:
			img_usage(stderr);
			return 1;
		}
	}
	if (optind >= argc)
		return fail("bench: missing FILE");
	const char *path = argv[optind];
	struct blk *b;
	int ret = blk_open(&b, path, &oo);
	if (ret < 0)
		return fail_blk("bench", path, ret);
	void *buf;
	if (posix_memalign(&buf, 4096, bufsize)) {
		blk_close(b);
		return fail("bench: out of memory");
	}
	memset(buf, 0xa5, bufsize);
	uint64_t size = blk_size(b), off = 0, bytes = 0;
	double t0 = now();
	for (uint64_t i = 0; i < count && ret == 0; i++) {
		if (off + bufsize > size)
			off = 0;
		if (bufsize > size)
			break;
		ret = write ? blk_pwrite(b, off, buf, bufsize) : blk_pread(b, off, buf, bufsize);
		off += bufsize;
		bytes += bufsize;
	}
	if (ret == 0 && write)
		ret = blk_flush(b);
	double el = now() - t0;
	free(buf);
	if (ret < 0) {
		fail_blk("bench", path, ret);
		blk_close(b);
		return 1;
	}
	blk_close(b);
	printf("%s %" PRIu64 " bytes in %.3f s: %.1f MB/s\n", write ? "wrote" : "read", bytes, el,
	       el > 0 ? (double)bytes / el / 1e6 : 0.0);
	return 0;
}

int cmd_img(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {
	    {"create", img_create},   {"info", img_info},	{"check", img_check},
	    {"resize", img_resize},   {"map", img_map},		{"snapshot", img_snapshot},
	    {"commit", img_commit},   {"rebase", img_rebase},	{"convert", img_convert},
	    {"compare", img_compare}, {"measure", img_measure}, {"bench", img_bench},
	};
	if (argc < 2) {
		img_usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		img_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].fn(argc - 1, argv + 1);
	return fail("unknown command '%s' (try 'kestrel img --help')", argv[1]);
}
