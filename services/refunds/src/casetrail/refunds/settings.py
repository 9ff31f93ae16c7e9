"""The refunds service's settings, from `REFUNDS_*` environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class RefundsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFUNDS_", extra="ignore", frozen=True)

    service_name: str = "refunds"
    # Payouts run apart from approvals, as a payment run does: a request approved just
    # before a crash is paid after the restart, once.
    payout_poll_seconds: float = Field(1.0, gt=0)
    payout_batch_size: int = Field(50, ge=1)
    payout_lease_seconds: float = Field(30.0, gt=0)
