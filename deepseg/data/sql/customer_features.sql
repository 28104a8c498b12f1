-- One row of behavioural features per customer, from a transaction log.
--
-- Written once, in the SQL that both DuckDB and Spark SQL accept. The two names Spark has and
-- DuckDB lacks (unix_micros, array_join) are defined as DuckDB macros by deepseg.data.engine;
-- names whose meaning differs between the engines (weekday, regexp_replace, split) are not used.
-- Spark runs it with spark.sql.parser.escapedStringLiterals=true, so backslashes in the regular
-- expression below reach both regex engines unchanged, and with the session time zone UTC.
--
-- Inputs, registered by the engine before the query:
--   deepseg_log     one row per invoice line: customer_raw, invoice, product, description,
--                   country (strings), quantity_raw, price_raw (numbers or strings) and
--                   date_raw (timestamps or ISO 8601 strings)
--   deepseg_params  one row: cancel_prefix (string), reference_us (microseconds since the
--                   epoch, or NULL for the day after the last invoice date in the whole log)
--
-- Output: one row per customer, ordered by customer_id, plus columns n_rows, n_rows_with_id,
-- n_bad_quantity, n_bad_price and n_bad_date holding whole-log counts; a log without any
-- customer id yields a single row whose customer_id is NULL (so the counts still arrive).
--
-- Day counts are whole elapsed days (floor of the difference / 86,400 s); weekday 0 is Monday
-- (1970-01-01 was a Thursday, weekday 3); hour bands are those of deepseg.data.transactions.

WITH typed AS (
  SELECT
    NULLIF(
      COALESCE(
        NULLIF(regexp_extract(trim(customer_raw), '^(-?[0-9]+)[.]0*$', 1), ''),
        trim(customer_raw)
      ),
      ''
    ) AS customer_id,
    invoice,
    product,
    description,
    country,
    TRY_CAST(quantity_raw AS DOUBLE) AS quantity,
    TRY_CAST(price_raw AS DOUBLE) AS price,
    unix_micros(TRY_CAST(date_raw AS TIMESTAMP)) AS ts_us,
    quantity_raw IS NOT NULL AS has_quantity,
    price_raw IS NOT NULL AS has_price,
    date_raw IS NOT NULL AS has_date
  FROM deepseg_log
),

totals AS (
  SELECT
    COUNT(*) AS n_rows,
    COUNT(customer_id) AS n_rows_with_id,
    -- values present but not parsed
    SUM(CASE WHEN has_quantity AND quantity IS NULL THEN 1 ELSE 0 END) AS n_bad_quantity,
    SUM(CASE WHEN has_price AND price IS NULL THEN 1 ELSE 0 END) AS n_bad_price,
    SUM(CASE WHEN has_date AND ts_us IS NULL THEN 1 ELSE 0 END) AS n_bad_date,
    MAX(ts_us) AS last_us
  FROM typed
),

reference AS (
  SELECT
    COALESCE(
      p.reference_us,
      CAST((FLOOR(t.last_us / 8.64e10) + 1) * 8.64e10 AS BIGINT)
    ) AS reference_us
  FROM deepseg_params p CROSS JOIN totals t
),

-- Rows with a customer id; a cancellation row has the cancel prefix or a negative quantity.
lines AS (
  SELECT
    customer_id,
    invoice,
    product,
    description,
    country,
    quantity,
    ts_us,
    COALESCE(quantity * price, CAST(0 AS DOUBLE)) AS line_value,
    CASE
      WHEN invoice IS NOT NULL
        AND substring(invoice, 1, length(p.cancel_prefix)) = p.cancel_prefix THEN TRUE
      WHEN quantity < 0 THEN TRUE
      ELSE FALSE
    END AS is_cancel
  FROM typed CROSS JOIN deepseg_params p
  WHERE customer_id IS NOT NULL
),

per_customer AS (
  SELECT
    customer_id,
    SUM(line_value) AS monetary,
    SUM(CASE WHEN is_cancel THEN CAST(0 AS DOUBLE) ELSE line_value END) AS gross,
    SUM(CASE WHEN is_cancel THEN CAST(0 AS DOUBLE) ELSE COALESCE(quantity, CAST(0 AS DOUBLE)) END)
      AS bought_items
  FROM lines
  GROUP BY customer_id
),

-- Distinct (product, description) pairs per customer over purchase rows.
purchases AS (
  SELECT DISTINCT customer_id, product, description
  FROM lines
  WHERE NOT is_cancel
),

per_product AS (
  SELECT customer_id, COUNT(DISTINCT product) AS distinct_products
  FROM purchases
  GROUP BY customer_id
),

-- One row per (customer, invoice, cancellation flag), dated by its earliest line.
invoices AS (
  SELECT customer_id, is_cancel, MIN(ts_us) AS ts_us
  FROM lines
  WHERE invoice IS NOT NULL
  GROUP BY customer_id, invoice, is_cancel
),

invoice_parts AS (
  SELECT
    customer_id,
    is_cancel,
    ts_us,
    (CAST(FLOOR(ts_us / 8.64e10) AS BIGINT) % 7 + 10) % 7 AS weekday,
    (CAST(FLOOR(ts_us / 3.6e9) AS BIGINT) % 24 + 24) % 24 AS hour
  FROM invoices
),

per_invoice AS (
  SELECT
    customer_id,
    SUM(CASE WHEN is_cancel THEN 0 ELSE 1 END) AS frequency,
    SUM(CASE WHEN is_cancel THEN 1 ELSE 0 END) AS n_cancel,
    MIN(CASE WHEN is_cancel THEN NULL ELSE ts_us END) AS first_us,
    MAX(CASE WHEN is_cancel THEN NULL ELSE ts_us END) AS last_us,
    SUM(CASE WHEN NOT is_cancel AND ts_us IS NOT NULL THEN 1 ELSE 0 END) AS n_dated,
    SUM(CASE WHEN NOT is_cancel AND weekday = 0 THEN 1 ELSE 0 END) AS n_weekday_0,
    SUM(CASE WHEN NOT is_cancel AND weekday = 1 THEN 1 ELSE 0 END) AS n_weekday_1,
    SUM(CASE WHEN NOT is_cancel AND weekday = 2 THEN 1 ELSE 0 END) AS n_weekday_2,
    SUM(CASE WHEN NOT is_cancel AND weekday = 3 THEN 1 ELSE 0 END) AS n_weekday_3,
    SUM(CASE WHEN NOT is_cancel AND weekday = 4 THEN 1 ELSE 0 END) AS n_weekday_4,
    SUM(CASE WHEN NOT is_cancel AND weekday = 5 THEN 1 ELSE 0 END) AS n_weekday_5,
    SUM(CASE WHEN NOT is_cancel AND weekday = 6 THEN 1 ELSE 0 END) AS n_weekday_6,
    SUM(CASE WHEN NOT is_cancel AND hour < 12 THEN 1 ELSE 0 END) AS n_hour_morning,
    SUM(CASE WHEN NOT is_cancel AND hour >= 12 AND hour < 16 THEN 1 ELSE 0 END)
      AS n_hour_afternoon,
    SUM(CASE WHEN NOT is_cancel AND hour >= 16 THEN 1 ELSE 0 END) AS n_hour_evening
  FROM invoice_parts
  GROUP BY customer_id
),

-- The most frequent country over the customer's rows; ties go to the alphabetically first.
country_counts AS (
  SELECT customer_id, country, COUNT(*) AS n
  FROM lines
  WHERE country IS NOT NULL
  GROUP BY customer_id, country
),

top_country AS (
  SELECT customer_id, country
  FROM (
    SELECT
      customer_id,
      country,
      ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY n DESC, country ASC) AS country_rank
    FROM country_counts
  ) ranked
  WHERE country_rank = 1
),

-- Distinct purchased descriptions with whitespace runs collapsed (Python's str.split
-- whitespace) and lowercased, sorted and joined with spaces. A catalogue has far fewer distinct
-- descriptions than a log has lines: each is normalised once, then joined back.
descriptions AS (
  SELECT DISTINCT customer_id, description
  FROM purchases
  WHERE description IS NOT NULL
),

normalised AS (
  SELECT
    description,
    lower(array_join(regexp_extract_all(
      description,
      '[^\t\n\x0B\f\r\x1C-\x1F \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]+',
      0
    ), ' ')) AS text
  FROM (SELECT DISTINCT description FROM descriptions) catalogue
),

-- Empty texts become NULL, which array_join skips: a filter on the text would be pushed below
-- the join by DuckDB's optimizer, normalising every (customer, description) pair instead.
per_text AS (
  SELECT
    d.customer_id,
    array_join(array_sort(array_distinct(array_agg(NULLIF(n.text, '')))), ' ') AS products_text
  FROM descriptions d
  JOIN normalised n ON n.description = d.description
  GROUP BY d.customer_id
),

customers AS (
  SELECT
    c.customer_id,
    CAST(FLOOR((r.reference_us - i.last_us) / 8.64e10) AS DOUBLE) AS recency,
    CAST(COALESCE(i.frequency, 0) AS BIGINT) AS frequency,
    c.monetary,
    CASE WHEN i.frequency > 0 THEN c.gross / i.frequency END AS avg_basket_value,
    CASE WHEN i.frequency > 0 THEN c.bought_items / i.frequency END AS items_per_invoice,
    CAST(COALESCE(pp.distinct_products, 0) AS BIGINT) AS distinct_products,
    CASE WHEN i.frequency + i.n_cancel > 0
      THEN i.n_cancel / CAST(i.frequency + i.n_cancel AS DOUBLE) END AS cancellation_rate,
    CAST(FLOOR((i.last_us - i.first_us) / 8.64e10) AS DOUBLE) AS tenure_days,
    CASE WHEN i.frequency > 1
      THEN FLOOR((i.last_us - i.first_us) / 8.64e10) / CAST(i.frequency - 1 AS DOUBLE)
    END AS mean_days_between_purchases,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_0 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_0,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_1 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_1,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_2 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_2,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_3 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_3,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_4 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_4,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_5 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_5,
    CASE WHEN i.n_dated > 0 THEN i.n_weekday_6 / CAST(i.n_dated AS DOUBLE) END
      AS share_weekday_6,
    CASE WHEN i.n_dated > 0 THEN i.n_hour_morning / CAST(i.n_dated AS DOUBLE) END
      AS share_hour_morning,
    CASE WHEN i.n_dated > 0 THEN i.n_hour_afternoon / CAST(i.n_dated AS DOUBLE) END
      AS share_hour_afternoon,
    CASE WHEN i.n_dated > 0 THEN i.n_hour_evening / CAST(i.n_dated AS DOUBLE) END
      AS share_hour_evening,
    tc.country,
    COALESCE(t.products_text, '') AS products_text
  FROM per_customer c
  CROSS JOIN reference r
  LEFT JOIN per_invoice i ON i.customer_id = c.customer_id
  LEFT JOIN per_product pp ON pp.customer_id = c.customer_id
  LEFT JOIN top_country tc ON tc.customer_id = c.customer_id
  LEFT JOIN per_text t ON t.customer_id = c.customer_id
)

SELECT
  customers.*,
  totals.n_rows,
  totals.n_rows_with_id,
  totals.n_bad_quantity,
  totals.n_bad_price,
  totals.n_bad_date
FROM totals
LEFT JOIN customers ON TRUE
ORDER BY customers.customer_id
