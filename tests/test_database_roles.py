"""Each service runs as a PostgreSQL role with only the privileges it needs."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "triage", "sla_timer", "refunds", "audit")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_role_can_change_no_schema(stack, service):
    with (
        psycopg.connect(stack.database_url(service)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("CREATE TABLE intruder (id int)")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_reaches_no_other_service_database(stack, service):
    other = "audit" if service != "audit" else "intake"
    own_url = stack.database_url(service)
    foreign = own_url.rsplit("/", 1)[0] + f"/casetrail_{other}"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(foreign).close()


def test_stored_events_can_be_appended_but_not_deleted(stack):
    with (
        psycopg.connect(stack.database_url("intake")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM intake_events")


@pytest.mark.parametrize("table", ["audit_records", "audit_log_leaves", "audit_tree_heads"])
def test_audit_log_tables_accept_insert_and_select_only(stack, table):
    with psycopg.connect(stack.database_url("audit")) as conn:
        privileges = {
            row[0]
            for row in conn.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE table_name = %s AND grantee = current_user",
                (table,),
            )
        }
    assert privileges == {"INSERT", "SELECT"}
