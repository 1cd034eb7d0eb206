"""Errors of the fine-tuning capability; each carries the HTTP status the API answers with."""


class FineTuningError(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


class JobNotFound(FineTuningError):
    def __init__(self, job_id: str):
        super().__init__(f"No fine-tuning job with id {job_id!r} in this workspace.", 404, "job_id")


class FineTunedModelNotFound(FineTuningError):
    def __init__(self, model_id: str):
        super().__init__(f"No fine-tuned model {model_id!r} in this workspace; list them with GET /v1/models.",
                         404, "model_id")
