#!/usr/bin/env python3
"""The man pages against the code (issue 19 item 8): every config field the
loader knows (the keyword tables' field list, printed by
build/tests/config_fields and passed as --config-fields FILE; issue 22),
and no other, in slotsync.json(5) and in README's config table; every option of every command
(src/main.c's option tables, src/announce_opts.c's names) and every signal a
command handles (ev_signal_init in src/controller.c and src/announce_run.c) must
be in docs/man/*.scd, in the page and section where such things are listed;
and the pages name installed paths through @...DIR@ (substituted at build
time from PREFIX), never a literal /usr/local.

Run by `make man-check`; exits 1 listing what is missing. --self-test checks
that the parsers find what they must (so that a parser broken by a code
change cannot pass by finding nothing).
"""

import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def config_fields(path):
    """Dotted config fields, one a line, from the keyword tables (a
    service's own keys as services.NAME.key)."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


# A field heading of slotsync.json(5): "*a.b*", "*a.b*, *a.c* (default: x)",
# "*services.*_NAME_".
HEADING = re.compile(r"^\*[a-z_][a-z_.]*\*(?:, \*[a-z_][a-z_.]*\*)*(?= \(|$|_NAME_)")


def page_fields(page):
    """The fields slotsync.json(5) describes in its headings."""
    out = []
    for line in page.splitlines():
        m = HEADING.match(line)
        if m:
            out.extend(f.rstrip(".") for f in re.findall(r"\*([a-z_][a-z_.]*)\*", m.group(0)))
    return out


def readme_fields(readme):
    """README's config table: {field: the row's text}, the first cell's
    backticked names (services.<name> as services.NAME)."""
    m = re.search(r"(?ms)^\| field \| default \| meaning \|\n\|---\|---\|---\|\n(.*?)(?=^[^|]|\Z)",
                  readme)
    out = {}
    for row in (m.group(1).splitlines() if m else []):
        first = row.split("|")[1]
        for name in re.findall(r"`([^`]+)`", first):
            out[name.replace("<name>", "NAME")] = row
    return out


def main_options(src):
    """{command: [long option names]} from src/main.c's option tables."""
    src = strip_comments(src)
    common = re.search(r"#define COMMON_OPTS(.*?)\n\n", src, re.S)
    common_names = re.findall(r'\{\s*"([a-z-]+)"', common.group(1)) if common else []
    out = {}
    for m in re.finditer(r"static const struct option (\w+)_opts\[\] = \{(.*?)\};", src, re.S):
        names = re.findall(r'\{\s*"([a-z-]+)"', m.group(2))
        if "COMMON_OPTS" in m.group(2):
            names = common_names + names
        out[m.group(1)] = names
    return out


def announce_options(src):
    m = re.search(r"opt_names\[\w+\] = \{(.*?)\};", strip_comments(src), re.S)
    return re.findall(r'= "([a-z-]+)"', m.group(1)) if m else []


def signals(src):
    return sorted(set(re.findall(r"ev_signal_init\([^;]*?\b(SIG[A-Z0-9]+)\)", src)))


def section(page, title):
    """The text of `# TITLE` up to the next `# ` heading."""
    m = re.search(r"(?m)^# %s\n(.*?)(?=^# |\Z)" % re.escape(title), page, re.S)
    return m.group(1) if m else ""


def signal_block(sigs_text, command):
    """In SIGNALS, the part from `*command*:` to the next `*other*:`."""
    m = re.search(r"(?ms)^\*%s\*:(.*?)(?=^\*[a-z]+\*:|\Z)" % command, sigs_text)
    return m.group(1) if m else ""


def check(problems, fields):
    page8 = read("docs", "man", "slotsync.8.scd")
    page5 = read("docs", "man", "slotsync.json.5.scd")
    main_src = read("src", "main.c")

    # config fields: "*etcd.tls.ca_file*" in slotsync.json(5); a service's
    # own keys as "*key*" in the services paragraph
    services = re.search(r"(?ms)^\*services\.\*_NAME_\n(.*?)(?=^\*|^# )", page5)
    services = services.group(1) if services else ""
    for field in fields:
        if any(f.startswith(field + ".") for f in fields):
            # a block: its fields are checked one by one
            if not re.search(r"\*%s\." % re.escape(field), page5):
                problems.append("slotsync.json(5): config block %s is not described" % field)
        elif field.startswith("services.NAME."):
            key = field.split(".", 2)[2]
            if "*%s*" % key not in services:
                problems.append("slotsync.json(5): services.NAME.%s is not in the services "
                                "paragraph" % key)
        elif "." in field:
            if "*%s*" % field not in page5:
                problems.append("slotsync.json(5): config field %s is not described" % field)
        elif not re.search(r"\*%s[*.]" % re.escape(field), page5):
            problems.append("slotsync.json(5): config field %s is not described" % field)

    # README's config table: the same fields, a service's keys in its row
    table = readme_fields(read("README.md"))
    for field in fields:
        if field.startswith("services.NAME."):
            key = field.split(".", 2)[2]
            if "`%s`" % key not in table.get("services.NAME", ""):
                problems.append("README: services.<name>'s row does not name %s" % key)
        elif field not in table and not any(t.startswith(field + ".") for t in table):
            problems.append("README: config field %s is not in the config table" % field)
    for name in table:
        if name not in fields and not any(f.startswith(name + ".") for f in fields):
            problems.append("README: the config table lists %s, which is no config field" % name)

    # and no field the code does not have (a renamed or removed one)
    for field in page_fields(page5):
        if field not in fields:
            problems.append("slotsync.json(5): describes %s, which is no config field" % field)

    # options: run, render, check in "OPTIONS OF RUN, RENDER AND CHECK" (or
    # their COMMANDS paragraph); status in its COMMANDS paragraph
    opts_rrc = section(page8, "OPTIONS OF RUN, RENDER AND CHECK")
    commands = section(page8, "COMMANDS")
    for cmd, names in sorted(main_options(main_src).items()):
        para = re.search(r"(?ms)^\*%s\*\n(.*?)(?=^\*[a-z]+\*\n|\Z)" % cmd, commands)
        para = para.group(1) if para else ""
        where = (opts_rrc + para) if cmd in ("run", "render", "check") else para + opts_rrc
        for name in names:
            if "*--%s*" % name not in where:
                problems.append("slotsync(8): %s's option --%s is not described" % (cmd, name))
    opts_ann = section(page8, "OPTIONS OF ANNOUNCE")
    for name in announce_options(read("src", "announce_opts.c")):
        if "*--%s*" % name not in opts_ann:
            problems.append("slotsync(8): announce's option --%s is not in OPTIONS OF "
                            "ANNOUNCE" % name)

    # signals, per command
    sigs = section(page8, "SIGNALS")
    for cmd, path in (("run", ("src", "controller.c")), ("announce", ("src", "announce_run.c"))):
        block = signal_block(sigs, cmd)
        for sig in signals(read(*path)):
            if "*%s*" % sig not in block:
                problems.append("slotsync(8): %s handles %s, not listed under SIGNALS" % (cmd, sig))
    if "SIGPIPE" in main_src and "*SIGPIPE*" not in sigs:
        problems.append("slotsync(8): SIGPIPE (ignored in main.c) is not under SIGNALS")

    # installed paths follow PREFIX
    for name, page in (("slotsync.8.scd", page8), ("slotsync.json.5.scd", page5)):
        if "/usr/local" in page:
            problems.append("%s: names /usr/local; write @DATADIR@ (or another @...DIR@) so "
                            "that the page follows PREFIX" % name)


def self_test(fields):
    """The parsers find what the code certainly has."""
    page = page_fields(read("docs", "man", "slotsync.json.5.scd"))
    opts = main_options(read("src", "main.c"))
    ann = announce_options(read("src", "announce_opts.c"))
    wanted = [
        ("etcd.endpoints" in fields, "config field etcd.endpoints"),
        ("haproxy.runtime_socket" in fields, "config field haproxy.runtime_socket"),
        ("services.NAME.listen" in fields, "config field services.NAME.listen"),
        ("resync_interval_s" in fields, "top-level config field resync_interval_s"),
        ("etcd.tls.key_file" in page, "slotsync.json(5)'s heading etcd.tls.key_file"),
        ("services" in page, "slotsync.json(5)'s heading services.NAME"),
        ("slotsync" not in page, "no heading in slotsync.json(5)'s SEE ALSO"),
        ("etcd.tls.key_file" in readme_fields(read("README.md")), "README's etcd.tls.key_file row"),
        ("config" in opts.get("run", []), "run's --config"),
        ("offline-ok" in opts.get("render", []), "render's --offline-ok"),
        ("admin" in opts.get("status", []), "status's --admin"),
        ("addr" in ann, "announce's --addr"),
        ("SIGHUP" in signals(read("src", "controller.c")), "run's SIGHUP"),
        ("SIGUSR2" in signals(read("src", "announce_run.c")), "announce's SIGUSR2"),
    ]
    missing = [what for ok, what in wanted if not ok]
    for what in missing:
        print("check_man.py: parser found no %s" % what)
    return not missing


def main():
    if "--config-fields" not in sys.argv[1:-1]:
        print("usage: check_man.py --config-fields FILE (build/tests/config_fields' output)")
        return 2
    fields = config_fields(sys.argv[sys.argv.index("--config-fields") + 1])
    if not self_test(fields):
        return 1
    if "--self-test" in sys.argv:
        return 0
    problems = []
    check(problems, fields)
    for p in problems:
        print("man-check: " + p)
    if problems:
        print("man-check: %d missing from the man pages or README" % len(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
