"""Run by scripts/mutation.sh inside a scratch tree after ``mutmut run``: print the counts, write the survivors.

Prints one line "killed survived timeout other total" and writes survivors.txt (each surviving mutant with its
diff) in the current folder. Uses mutmut's own reading of its results, in one process.
"""

import sys
from collections import Counter

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

counts = Counter()
survivors = []
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for name, exit_code in sorted(data.exit_code_by_key.items()):
        status = status_by_exit_code[exit_code]
        counts[status] += 1
        if status == "survived":
            survivors.append(f"# {name}: survived\n{get_diff_for_mutant(name, path=path)}\n")

with open("survivors.txt", "w", encoding="utf-8") as out:
    out.write("\n".join(survivors))
killed = counts["killed"] + counts["caught by type check"]
other = sum(counts.values()) - killed - counts["survived"] - counts["timeout"]
print(killed, counts["survived"], counts["timeout"], other, sum(counts.values()))
sys.exit(0)
