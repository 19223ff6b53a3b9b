// only the container block of the bench, for its figure
