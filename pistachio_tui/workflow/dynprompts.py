"""Dynamic prompts: the editor's ``{a|b}`` choices and C-style comments in prompt text.

Prompt widgets flagged ``dynamicPrompts`` are rewritten when the editor builds
the API prompt: comments are stripped and one option of every ``{…|…}`` group
is picked at random.
"""

from __future__ import annotations

import random
import re

_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//[^\n\r\u2028\u2029]*")
_ESCAPED_SYNTAX = re.compile(r"\\([{}|])")
#: Where plain text stops: an escape or the start of a choice group.
_SPECIAL = re.compile(r"[\\{]")


def process_dynamic_prompt(text: str, rng: random.Random) -> str:
    """Strip C-style comments and pick one option of every ``{a|b}`` group.

    Mirrors the frontend's dynamic-prompt serialisation, which runs on every
    prompt widget flagged ``dynamicPrompts`` before the prompt is queued.
    """
    return _ESCAPED_SYNTAX.sub(r"\1", _expand_choices(_COMMENTS.sub("", text), rng))


def _expand_choices(text: str, rng: random.Random) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        special = _SPECIAL.search(text, i)
        if special is None:
            out.append(text[i:])  # plain text is copied in runs, not a character at a time
            break
        out.append(text[i:special.start()])
        char = text[special.start()]
        i = special.start() + 1
        if char == "\\":
            out.append("\\" + (text[i] if i < len(text) else "undefined"))
            i += 1
        elif char == "{":
            options: list[str] = []
            current: list[str] = []
            depth = 0
            while i < len(text):
                c = text[i]
                i += 1
                if c == "\\":
                    current.append("\\" + (text[i] if i < len(text) else "undefined"))
                    i += 1
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    if not depth:
                        break
                    depth -= 1
                elif c == "|" and not depth:
                    options.append("".join(current))
                    current = []
                    continue
                current.append(c)
            options.append("".join(current))
            out.append(_expand_choices(_COMMENTS.sub("", rng.choice(options)), rng))
    return "".join(out)
