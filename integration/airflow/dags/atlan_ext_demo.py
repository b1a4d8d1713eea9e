"""A small DAG for the Airflow integration stage: two tasks whose runs Airflow's OpenLineage
provider reports through atlan_ext.transport.AtlanTransport."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def summarize() -> int:
    return 42


with DAG(
    "atlan_ext_demo",
    start_date=datetime(2026, 11, 1),
    schedule=None,
    catchup=False,
) as dag:
    extract = BashOperator(task_id="extract", bash_command="echo extracted")
    total = PythonOperator(task_id="summarize", python_callable=summarize)
    extract >> total
