"""Line-preserving edits of INI-style files (standard library only): ``kritarc`` (KConfig: ``[group]``
headers and ``key=value`` lines) and ``gimprc``-like files. :func:`ini_get` reads one key, :func:`ini_set`
and :func:`ini_restore` touch one key and leave every other byte alone.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple


def _split_lines(text: str) -> List[str]:
    return text.splitlines(keepends=True)


def _section_span(lines: Sequence[str], section: str) -> Optional[Tuple[int, int]]:
    """(header index, end index) of the first ``[section]``; end = next header or len(lines)."""
    start = None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            if start is not None:
                return start, i
            if s[1:-1] == section:
                start = i
    return None if start is None else (start, len(lines))


def _key_of(line: str) -> Optional[str]:
    s = line.strip()
    if not s or s[0] in "#;[" or "=" not in s:
        return None
    return s.split("=", 1)[0].strip()


def ini_get(text: str, section: str, key: str) -> Optional[str]:
    """The value of ``key`` in ``[section]``, or None."""
    lines = _split_lines(text)
    span = _section_span(lines, section)
    if span is None:
        return None
    for line in lines[span[0] + 1 : span[1]]:
        if _key_of(line) == key:
            return line.split("=", 1)[1].strip()
    return None


def ini_set(text: str, section: str, key: str, value: str) -> Tuple[str, Optional[str], bool]:
    """Set ``key=value`` in ``[section]``, touching nothing else.

    Returns ``(new_text, previous_value_or_None, created_section)``.
    """
    if "\n" in value or "\n" in key or "=" in key:
        raise ValueError(f"bad INI key/value {key!r}={value!r}")
    nl = "\r\n" if "\r\n" in text else "\n"
    lines = _split_lines(text)
    span = _section_span(lines, section)
    if span is None:
        prefix = "" if not text or text.endswith(("\n", "\r")) else nl
        sep = nl if text.strip() else ""
        return text + prefix + sep + f"[{section}]{nl}{key}={value}{nl}", None, True
    start, end = span
    for i in range(start + 1, end):
        if _key_of(lines[i]) == key:
            previous = lines[i].split("=", 1)[1].strip()
            ending = lines[i][len(lines[i].rstrip("\r\n")):] or nl
            lines[i] = f"{key}={value}{ending}"
            return "".join(lines), previous, False
    # insert after the section's last non-blank line
    at = end
    while at > start + 1 and not lines[at - 1].strip():
        at -= 1
    if at > 0 and not lines[at - 1].endswith(("\n", "\r")):
        lines[at - 1] += nl
    lines.insert(at, f"{key}={value}{nl}")
    return "".join(lines), None, False


def ini_restore(text: str, section: str, key: str, value: str, previous: Optional[str],
                created_section: bool, added_newline: bool = False) -> Tuple[str, str]:
    """Undo ``ini_set``: drop the key (or put ``previous`` back) if it still holds ``value``.

    With ``created_section`` an emptied section goes too (and, with ``added_newline``, the line
    break ``ini_set`` had to add to a file that did not end with one).

    Returns ``(new_text, note)``; ``note`` explains when the user's own later change was kept.
    """
    lines = _split_lines(text)
    span = _section_span(lines, section)
    if span is None:
        return text, ""
    start, end = span
    for i in range(start + 1, end):
        if _key_of(lines[i]) == key:
            current = lines[i].split("=", 1)[1].strip()
            if current != value:
                return text, f"kept [{section}] {key}={current} (changed after the install)"
            if previous is None:
                del lines[i]
                end -= 1
            else:
                ending = lines[i][len(lines[i].rstrip("\r\n")):]
                lines[i] = f"{key}={previous}{ending}"
            break
    else:
        return text, ""
    if created_section and not any(line.strip() for line in lines[start + 1 : end]):
        del lines[start:end]
        # drop the blank separator ini_set added before the header
        if start > 0 and start == len(lines) and not lines[start - 1].strip():
            del lines[start - 1]
            if added_newline and lines and start - 2 == len(lines) - 1:
                lines[-1] = lines[-1].rstrip("\r\n")
    return "".join(lines), ""
