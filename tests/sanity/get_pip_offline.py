# Copyright: Sơn La IT center
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the pip bootstrap script that ansible-test downloads from a host these machines do not reach.

ansible-test runs it in each fresh sanity virtual environment, with get-pip.py's arguments. The project's
own pip (OUTER_PYTHON, filled in by scripts/sanity.sh) installs the requested pip into that environment
from the package index it already uses. scripts/sanity.sh puts it where ansible-test looks for its cache.
"""

import subprocess
import sys

OUTER_PYTHON = "@OUTER_PYTHON@"
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}  # get-pip.py's own options, unknown to pip install

arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY]
subprocess.run([OUTER_PYTHON, "-m", "pip", "--python", sys.executable, "install", *arguments], check=True)
