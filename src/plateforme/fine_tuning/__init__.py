"""Fine-tuning: jobs (validate, train in a worker process, resume, cancel) and the models they make."""
