"""sanad: refugee registration and smart identity cards."""

import os

__version__ = "0.1.0"

# FAISS parallelises with OpenMP. By default GNU OpenMP threads *spin* while they wait for
# work; on a shared machine that burns cores the rest of the service needs (measured under
# load: the quantiser's k-means cost 12.7 s of CPU on two spinning threads against 0.5 s on
# one). Waiting threads sleep instead. Read by libgomp when it loads, i.e. before the first
# `import faiss`, which every sanad module that uses it imports after this package; an
# operator's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
