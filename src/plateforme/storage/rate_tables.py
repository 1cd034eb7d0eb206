"""Rate-limit counters shared by every gateway replica on one database (usage/database_counters.py).

One row per scope (`ws:<workspace id>`, `key:<key id>`): the requests and tokens of the current
fixed window (`window_no` = Unix time // window length) and of the window before it, from which
a sliding minute is estimated.
"""

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from plateforme.storage.tables import Base


class RateCounter(Base):
    __tablename__ = "rate_counters"
    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_no: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(BigInteger)
    prev_requests: Mapped[int] = mapped_column(Integer)
    prev_tokens: Mapped[int] = mapped_column(BigInteger)
