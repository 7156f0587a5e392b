"""Collectors: the outside world (broker, queues, workers, Pushgateway, events) in, samples out."""
