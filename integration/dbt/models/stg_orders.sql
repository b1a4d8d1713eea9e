select id, cast(day as date) as day, amount from {{ ref('raw_orders') }}
