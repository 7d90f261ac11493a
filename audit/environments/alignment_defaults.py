"""Default settings of :func:`~.alignment.align_environments`, in a module without numpy, so that the command
line can show them in ``--help`` without importing the analysis."""

#: Neighbours of CKNNA and mutual k-NN before the cap (arXiv 2512.03750 used 25 on 50,000 structures).
DEFAULT_K = 10
#: Smallest group (distinct environments) that is analysed.
DEFAULT_MIN_ENVIRONMENTS = 50
#: k-means clusters of environments.
DEFAULT_CLUSTERS = 10
#: Distinct environments per group above which the group is subsampled (seeded).
DEFAULT_MAX_PER_GROUP = 2000
