/* Tests for names: the frontend names (moved from test_render.c) and the
 * named defaults a base config declares (moved from test_dynback.c). */
#include <criterion/criterion.h>

#include <stdbool.h>
#include <string.h>

#include <slotsync/endpoint.h>
#include <slotsync/names.h>

Test(names, frontend_names)
{
    char fe[RENDER_FRONTEND_NAME_SIZE];
    char longest[SERVICE_NAME_MAX + 1];

    names_frontend("api", fe);
    cr_expect_str_eq(fe, "fe:api");
    memset(longest, 'a', SERVICE_NAME_MAX);
    longest[SERVICE_NAME_MAX] = '\0';
    names_frontend(longest, fe);
    cr_expect_eq(strlen(fe), 3 + SERVICE_NAME_MAX, "never cut short");
    cr_expect(names_frontend_valid(fe));
    cr_expect(names_frontend_valid("slotsync:http"));
    cr_expect(names_frontend_valid("fe:a.b_c-D"));
    cr_expect_not(names_frontend_valid("fe:"));
    cr_expect_not(names_frontend_valid("fe:a b"));
    cr_expect_not(names_frontend_valid("fe:spare:1"));
    cr_expect_not(names_frontend_valid("api"));
    cr_expect_not(names_frontend_valid("slotsync_http"));
}

Test(names, base_config_declares_the_named_defaults)
{
    static const struct {
        const char *text;
        bool yes;
    } cases[] = {
        {"global\n    maxconn 1\ndefaults slotsync:base\n    mode http\n", true},
        {"defaults slotsync:base from other\n", true},
        {"defaults  slotsync:base\r\n", true},
        {"defaults\tslotsync:base", true},
        {"defaults\n    mode http\n", false},
        {"defaults from slotsync:base\n", false},
        {"defaults slotsync:basement\n", false},
        {"# defaults slotsync:base\n", false},
        {"    defaults slotsync:base\n", false},
        {"backend slotsync:base\n", false},
        {"", false},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        cr_expect_eq(
            names_defaults_declared(cases[k].text, strlen(cases[k].text), DYNBACK_BASE_DEFAULTS),
            cases[k].yes, "%s", cases[k].text);
}
