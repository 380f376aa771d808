/* An "external code" for streamal's executable simulator: one Gaussian peak per sample.
 *
 * Usage: peak INPUT OUTPUT. INPUT holds one line per sample, "class centre width" (the
 * simulator's default `table` input); OUTPUT gets one line of 256 values per sample.
 * Build: cc -O2 -o examples/executable/peak examples/executable/peak.c -lm
 */
#include <math.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: peak INPUT OUTPUT\n"); return 2; }
    FILE *in = fopen(argv[1], "r"), *out = fopen(argv[2], "w");
    if (!in || !out) { perror("peak: open"); return 1; }
    int cls;
    double centre, width;
    while (fscanf(in, "%d %lf %lf", &cls, &centre, &width) == 3) {
        for (int i = 0; i < 256; i++) {
            double z = (i / 255.0 - centre) / width;
            fprintf(out, "%.9g ", exp(-0.5 * z * z));
        }
        fputc('\n', out);
    }
    return fclose(out) != 0;
}
