#!/usr/bin/env python3
"""The header rule (issue 22 item 5): a header in include/slotsync/ includes
only system headers and slotsync's -t.h headers; a type it needs only behind
a pointer is a forward declaration (struct x;). A -t.h header holds types,
constants and callback typedefs, not functions. So no module's headers lead
back to it, and a header pulls in types, never another module's functions.

usage: check_headers.py [INCDIR]    (default include/slotsync)
Prints each breach as FILE:LINE: what, and exits 1 if there is one.
"""
import os
import re
import sys

# Headers the rule does not bind, with the reason. Empty: every header keeps it.
EXEMPT = {}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# A function declared at file scope: a name, its parameter list, then ';'
# (a function-pointer typedef has "(*" and is a type, not a function).
PROTOTYPE = re.compile(r'^[A-Za-z_][\w\s\*]*?\b(\w+)\s*\((?!\s*\*)[^;{]*\)\s*(__attribute__.*)?;', re.M)


def strip_comments(text):
    return re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), text, flags=re.S)


def check(incdir):
    bad = []
    for name in sorted(os.listdir(incdir)):
        if not name.endswith('.h') or name in EXEMPT:
            continue
        path = os.path.join(incdir, name)
        text = strip_comments(open(path, encoding='utf-8').read())
        for no, line in enumerate(text.split('\n'), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(2)
            if m.group(1) == '"':
                bad.append(f'{path}:{no}: includes "{target}": slotsync headers are <slotsync/X-t.h>')
            elif target.startswith('slotsync/') and not target.endswith('-t.h'):
                bad.append(f'{path}:{no}: includes <{target}>, not a -t.h header '
                           f'(include its -t.h, or declare the struct for a pointer)')
        if name.endswith('-t.h'):
            flat = re.sub(r'\\\n', ' ', text)
            flat = re.sub(r'^\s*#.*$', '', flat, flags=re.M)
            depth, top = 0, []
            for ch in flat:  # only what stands at file scope
                if ch == '{':
                    depth += 1
                elif ch == '}':
                    depth -= 1
                elif depth == 0:
                    top.append(ch)
            for m in PROTOTYPE.finditer(''.join(top)):
                if not m.group(0).lstrip().startswith('typedef'):
                    bad.append(f'{path}: declares function {m.group(1)}(): a -t.h header holds types only')
    return bad


def main():
    incdir = sys.argv[1] if len(sys.argv) > 1 else 'include/slotsync'
    bad = check(incdir)
    for b in bad:
        print(b)
    if bad:
        print(f'header rule: {len(bad)} breach(es); see docs/DESIGN.md, "Types apart from functions"')
        return 1
    print(f'header rule: {len(os.listdir(incdir))} headers include only system and -t.h headers')
    return 0


if __name__ == '__main__':
    sys.exit(main())
