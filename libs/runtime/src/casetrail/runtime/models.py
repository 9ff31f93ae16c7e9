"""The two pydantic bases every service uses: policy sections and request bodies."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A policy file's section: unknown keys are mistakes, and a loaded policy never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictRequest(BaseModel):
    """A request body: a field the API does not know is refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")
