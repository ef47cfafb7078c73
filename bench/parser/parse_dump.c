
/*
 * Copyright (C) ngx_sip authors
 */


/*
 * What the SIP core makes of each input file (tests/ngx_sip_dump.h), for
 * bench/parser/diff.sh: a parser change that is meant to be faster and
 * nothing else must print the same for every file of a corpus.
 *
 *   parse_dump FILE...
 */


#include "ngx_sip.h"
#include "ngx_sip_dump.h"

#include <stdlib.h>


static void
dump_file(const char *name)
{
    FILE           *fp;
    size_t          len;
    static u_char   buf[DUMP_MAX_SIZE];

    fp = fopen(name, "rb");
    if (fp == NULL) {
        perror(name);
        exit(2);
    }

    len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);

    printf("== %s %zu\n", name, len);

    ngx_sip_dump(stdout, &ngx_sip_dump_core, buf, len);
}


int
main(int argc, char **argv)
{
    int    i;
    char   line[4096];
    size_t n;

    if (argc > 1) {
        for (i = 1; i < argc; i++) {
            dump_file(argv[i]);
        }

        return 0;
    }

    /* names on standard input, one per line */

    while (fgets(line, sizeof(line), stdin) != NULL) {
        n = strlen(line);

        if (n && line[n - 1] == '\n') {
            line[n - 1] = '\0';
        }

        if (line[0]) {
            dump_file(line);
        }
    }

    return 0;
}
