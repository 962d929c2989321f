/* fuzz_config: libFuzzer target for src/core/config.c. The input, made a
 * NUL-terminated string, goes to config_load_string; the error text (if
 * any) and the config are freed. Crashes, leaks and sanitizer reports are
 * the findings. */
#include "core/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    struct config cfg;
    char *errors = NULL;
    int r = config_load_string(text, "fuzz.conf", &cfg, &errors);
    if (r != 0 && errors == NULL)
        abort(); /* a failure always says why */
    free(errors);
    config_free(&cfg);
    free(text);
    return 0;
}
