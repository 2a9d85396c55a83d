"""Seeds numpy's global generator for the docs' examples (tests/test_docs.py).

Some examples are the original user guide's snippets as it printed them:
their random forests take no `random_state`, so each run may pick other
parameters. The test puts this folder on `PYTHONPATH`, so they pick the same
ones every time. Only when scikit-learn is imported: `lab` itself stays as
quick to start as without it.
"""

import sys


class _SeedBeforeScikitLearn:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn":
            sys.meta_path.remove(self)
            import numpy

            numpy.random.seed(0)
        return None


sys.meta_path.insert(0, _SeedBeforeScikitLearn())
