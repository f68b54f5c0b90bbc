/* test_mem - when the heap is trimmed after a transient buffer: only after
 * a large one, at most once a second, a debt paid later. */
#include <criterion/criterion.h>

#include <stdlib.h>

#include <slotsync/mem.h>

Test(mem, decisions)
{
    static const struct {
        size_t bytes; /* 0: the once-a-second timer asks */
        double at;
        bool trim;
    } steps[] = {
        {4096, 10.0, false},              /* small: no trim */
        {MEM_TRIM_MIN - 1, 10.1, false},  /* just under */
        {0, 10.2, false},                 /* the timer: nothing owed */
        {MEM_TRIM_MIN, 10.3, true},       /* large, first: at once */
        {MEM_TRIM_MIN * 50, 10.5, false}, /* large, 0.2 s later: owed */
        {4096, 11.0, false},              /* small, still within the second */
        {0, 11.2, false},                 /* timer, 0.9 s: not yet */
        {0, 11.3, true},                  /* timer, 1.0 s: the debt paid */
        {0, 12.5, false},                 /* nothing owed */
        {4096, 13.0, false},              /* small never owes */
        {MEM_TRIM_MIN, 20.0, true},       /* long after: at once */
    };
    struct mem_trim_state s = {0};
    unsigned long long trims = 0;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        bool due = steps[i].bytes ? mem__freed(&s, steps[i].bytes, steps[i].at)
                                  : mem__owed_due(&s, steps[i].at);

        cr_expect_eq(due, steps[i].trim, "step %zu", i);
        if (due) {
            mem__trimmed(&s, steps[i].at);
            trims++;
        }
    }
    cr_expect_eq(s.trims, trims);
    cr_expect_eq(trims, 3);
}

/* The process-wide calls: a large buffer trims, a small one does not. */
Test(mem, process_trim)
{
    unsigned long long before = mem_trims();
    char *p = malloc(MEM_TRIM_MIN * 4);

    cr_assert_not_null(p);
    for (size_t i = 0; i < MEM_TRIM_MIN * 4; i += 4096)
        p[i] = 1;
    free(p);
    mem_transient_freed(16);
    cr_expect_eq(mem_trims(), before);
    mem_transient_freed(MEM_TRIM_MIN * 4);
    cr_expect_eq(mem_trims(), before + 1);
    mem_transient_freed(MEM_TRIM_MIN * 4); /* within the second: owed */
    cr_expect_eq(mem_trims(), before + 1);
    cr_expect_not(mem_trim_owed());
}
