// The tests start several processes under mpirun on a 2-core machine; one at a time keeps each within its limits.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
