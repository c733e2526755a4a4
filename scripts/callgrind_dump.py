"""Reading a callgrind dump (callgrind_format, as valgrind 3.19 writes it) for scripts/code-footprint and
scripts/gen-hot-functions: the cost lines of each function, with the object and function they belong to.

Names are compressed (`fn=(12) name` the first time, `fn=(12)` after; a name may first come in a `cfn=`/`cob=` line of
a call); the line after `calls=` is the call's inclusive cost, not an instruction of the caller, and is skipped.
Positions are `line` or `instr line` (`--dump-instr=yes`): an instruction's address is absolute (`0x...`), relative
to the last (`+N`, `-N`) or the same (`*`)."""
import re

_NAME = re.compile(r"(c?ob|c?fn|fl|fi|fe|cfi|cfl)=\((\d+)\)(?: (.*))?$")


def costs(path):
    """Yields (object, function, address or None without instruction positions, cost) for every cost line of `path`
    (its first event: Ir for count-proxy-instructions' dumps)."""
    objects, functions = {}, {}
    ob = fn = None
    positions = ["line"]
    last = 0
    skip = False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("positions:"):
                positions = line.split()[1:]
                continue
            m = _NAME.match(line)
            if m:
                kind, ident, name = m.groups()
                table = objects if kind.endswith("ob") else functions if kind.endswith("fn") else None
                if table is not None and name:
                    table[ident] = name
                if kind == "ob":
                    ob = objects.get(ident, ident)
                elif kind == "fn":
                    fn = functions.get(ident, ident)
                continue
            if line.startswith("calls="):
                skip = True
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            fields = line.split()
            address = None
            if positions[0] == "instr":
                token = fields[0]
                if token.startswith("0x"):
                    address = int(token, 16)
                elif token.startswith("+"):
                    address = last + int(token[1:], 0)
                elif token.startswith("-"):
                    address = last - int(token[1:], 0)
                else:  # "*": the same position
                    address = last
                last = address
            if skip:
                skip = False
                continue
            yield ob, fn, address, int(fields[len(positions)]) if len(fields) > len(positions) else 0
