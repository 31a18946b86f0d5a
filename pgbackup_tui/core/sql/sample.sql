-- The sample database behind `pgbackup-tui demo` and the tests.
--
-- Run by Sandbox.load_sample() with psql --single-transaction -v wide_rows=N.
-- Every row is derived from generate_series (no random()), so row counts and contents are the
-- same on every load: tests compare them after a dump / restore round trip.
--
-- Objects reference each other fully qualified: pg_dump restores with search_path = '', and a
-- function body that relied on search_path would break in the restored copy.

SET client_min_messages = warning;

CREATE EXTENSION citext WITH SCHEMA public;

CREATE SCHEMA "Sales & Ops";
CREATE SCHEMA inventory;
CREATE SCHEMA "café";
-- A schema literally named dot: with table "name" it makes dot.name, the decoy that an
-- unquoted pattern public.dot.name (or a regex dot) would also catch.
CREATE SCHEMA dot;

COMMENT ON SCHEMA "Sales & Ops" IS 'Orders and customers: enum, domain, citext, identity columns';

------------------------------------------------------------------------------------------------
-- "Sales & Ops": types, functions, tables that depend on them, a trigger.
------------------------------------------------------------------------------------------------

CREATE TYPE "Sales & Ops".order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');

CREATE DOMAIN "Sales & Ops".positive_amount AS numeric(12, 2) CHECK (VALUE > 0);

-- Used in a CHECK constraint: a restore that forgets the function fails on the table.
CREATE FUNCTION "Sales & Ops".is_plausible_email(address text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT
    RETURN address LIKE '_%@_%._%';

-- Used in a DEFAULT.
CREATE FUNCTION "Sales & Ops".default_region() RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN 'EU';

CREATE FUNCTION "Sales & Ops".touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := pg_catalog.now();
    RETURN NEW;
END;
$$;

CREATE TABLE "Sales & Ops".customers (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email public.citext NOT NULL UNIQUE
        CHECK ("Sales & Ops".is_plausible_email(email::text)),
    full_name text NOT NULL,
    region text NOT NULL DEFAULT "Sales & Ops".default_region(),
    created_at timestamptz NOT NULL
);

CREATE TABLE "Sales & Ops".orders (
    id bigserial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES "Sales & Ops".customers (id),
    status "Sales & Ops".order_status NOT NULL DEFAULT 'pending',
    amount "Sales & Ops".positive_amount NOT NULL,
    ordered_at timestamptz NOT NULL,
    updated_at timestamptz
);
CREATE INDEX orders_customer_id_idx ON "Sales & Ops".orders (customer_id);

-- Only on UPDATE: a data-only restore (which inserts) must reproduce the rows exactly.
CREATE TRIGGER orders_touch_updated_at
    BEFORE UPDATE ON "Sales & Ops".orders
    FOR EACH ROW EXECUTE FUNCTION "Sales & Ops".touch_updated_at();

CREATE TABLE "Sales & Ops"."Order Items" (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES "Sales & Ops".orders (id) ON DELETE CASCADE,
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    unit_price "Sales & Ops".positive_amount NOT NULL,
    source_table text NOT NULL DEFAULT '"Sales & Ops"."Order Items"'
);

INSERT INTO "Sales & Ops".customers (email, full_name, region, created_at)
SELECT format('Customer%s@Example.com', g),
       format('Customer %s', g),
       (ARRAY['EU', 'NA', 'APAC', 'LATAM'])[1 + g % 4],
       timestamptz '2023-01-01 00:00:00+00' + g * interval '7 hours'
FROM generate_series(1, 500) AS g;

INSERT INTO "Sales & Ops".orders (customer_id, status, amount, ordered_at)
SELECT 1 + g % 500,
       (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[1 + g % 4]::"Sales & Ops".order_status,
       round(5 + (g * 37 % 10000) / 100.0, 2),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '97 minutes'
FROM generate_series(1, 2000) AS g;

INSERT INTO "Sales & Ops"."Order Items" (order_id, sku, quantity, unit_price)
SELECT 1 + g % 2000,
       format('SKU-%s', lpad((g % 250)::text, 4, '0')),
       1 + g % 5,
       round(1 + (g * 13 % 5000) / 100.0, 2)
FROM generate_series(1, 5000) AS g;

-- Decoy for "Sales & Ops"."Order Items": what an unquoted Order Items would fold to.
CREATE TABLE "Sales & Ops"."order items" (id integer PRIMARY KEY, source_table text NOT NULL);
INSERT INTO "Sales & Ops"."order items"
SELECT g, '"Sales & Ops"."order items"' FROM generate_series(1, 3) AS g;

CREATE VIEW "Sales & Ops".open_orders AS
    SELECT o.id, c.email, o.amount, o.ordered_at
    FROM "Sales & Ops".orders AS o
    JOIN "Sales & Ops".customers AS c ON c.id = o.customer_id
    WHERE o.status IN ('pending', 'paid');

------------------------------------------------------------------------------------------------
-- inventory: plain tables with a foreign key inside the schema.
------------------------------------------------------------------------------------------------

CREATE TABLE inventory.warehouses (
    id integer PRIMARY KEY,
    city text NOT NULL
);
INSERT INTO inventory.warehouses VALUES (1, 'Lyon'), (2, 'Porto'), (3, 'Tallinn');

CREATE TABLE inventory.stock (
    warehouse_id integer NOT NULL REFERENCES inventory.warehouses (id),
    sku text NOT NULL,
    on_hand integer NOT NULL,
    PRIMARY KEY (warehouse_id, sku)
);
INSERT INTO inventory.stock
SELECT w, format('SKU-%s', lpad(s::text, 4, '0')), (w * 31 + s * 7) % 100
FROM generate_series(1, 3) AS w, generate_series(0, 249) AS s;

------------------------------------------------------------------------------------------------
-- public: the wide table, a partitioned table, views, a large object, a standalone sequence.
------------------------------------------------------------------------------------------------

CREATE TABLE public.events (
    id bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    kind text NOT NULL,
    payload text NOT NULL,
    attributes jsonb NOT NULL,
    amount numeric(14, 2),
    is_billable boolean NOT NULL,
    correlation_id uuid NOT NULL,
    source_host text NOT NULL,
    score double precision
);
COMMENT ON TABLE public.events IS 'Wide table: Sandbox.load_sample(wide_rows=N) rows';

-- md5() gives deterministic "random-looking" text; 3 x 32 hex chars + a prefix ~ 100 chars.
INSERT INTO public.events
SELECT g,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 seconds',
       (ARRAY['click', 'view', 'purchase', 'signup', 'logout'])[1 + g % 5],
       'evt:' || md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text),
       jsonb_build_object('n', g, 'even', g % 2 = 0, 'tags', jsonb_build_array('t' || g % 7, 't' || g % 11)),
       CASE WHEN g % 10 = 0 THEN NULL ELSE round((g % 100000) / 7.0, 2) END,
       g % 3 = 0,
       md5('corr' || g)::uuid,
       format('app-%s.internal', g % 16),
       (g % 1000) / 10.0
FROM generate_series(1, :wide_rows) AS g;

CREATE INDEX events_occurred_at_idx ON public.events (occurred_at);
CREATE INDEX events_kind_idx ON public.events (kind) WHERE is_billable;

CREATE TABLE public.measurements (
    sensor_id integer NOT NULL,
    measured_on date NOT NULL,
    reading numeric(8, 3) NOT NULL
) PARTITION BY RANGE (measured_on);
CREATE TABLE public.measurements_2024_q1 PARTITION OF public.measurements
    FOR VALUES FROM ('2024-01-01') TO ('2024-04-01');
CREATE TABLE public.measurements_2024_q2 PARTITION OF public.measurements
    FOR VALUES FROM ('2024-04-01') TO ('2024-07-01');
CREATE TABLE public.measurements_2024_q3 PARTITION OF public.measurements
    FOR VALUES FROM ('2024-07-01') TO ('2024-10-01');
CREATE TABLE public.measurements_default PARTITION OF public.measurements DEFAULT;
CREATE INDEX measurements_sensor_idx ON public.measurements (sensor_id, measured_on);

-- 6000 rows over 400 days: Q1..Q3 and the default partition (Oct 2024 onwards) all get rows.
INSERT INTO public.measurements
SELECT 1 + g % 20, date '2024-01-01' + g % 400, round(((g * 7919) % 100000) / 1000.0, 3)
FROM generate_series(1, 6000) AS g;

CREATE MATERIALIZED VIEW public.daily_totals AS
    SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, count(*) AS orders, sum(amount) AS total
    FROM "Sales & Ops".orders
    GROUP BY 1
    WITH DATA;
CREATE UNIQUE INDEX daily_totals_day_idx ON public.daily_totals (day);

CREATE VIEW public.recent_events AS
    SELECT id, occurred_at, kind FROM public.events WHERE occurred_at >= timestamptz '2024-01-02 00:00:00+00';

-- A large object with known content, referenced by oid from a row, with a comment.
CREATE TABLE public.documents (
    id integer PRIMARY KEY,
    title text NOT NULL,
    content oid NOT NULL
);
DO $$
DECLARE
    object_id oid := pg_catalog.lo_from_bytea(0, pg_catalog.convert_to('pgbackup-tui sample large object: café ☕', 'UTF8'));
BEGIN
    INSERT INTO public.documents VALUES (1, 'readme', object_id);
    EXECUTE format('COMMENT ON LARGE OBJECT %s IS %L', object_id, 'sample large object');
END;
$$;

-- A standalone sequence behind a DEFAULT, advanced so a restore can check its value.
CREATE SEQUENCE public.invoice_no_seq START WITH 1000;
CREATE TABLE public.invoices (
    invoice_no bigint PRIMARY KEY DEFAULT nextval('public.invoice_no_seq'),
    customer_email public.citext NOT NULL,
    total numeric(12, 2) NOT NULL
);
INSERT INTO public.invoices (customer_email, total)
SELECT format('customer%s@example.com', g), g * 10
FROM generate_series(1, 40) AS g;
SELECT pg_catalog.setval('public.invoice_no_seq', 5000, true);

------------------------------------------------------------------------------------------------
-- Awkward names and their decoys. A naive pg_dump pattern (unquoted, or with * ? . left as
-- wildcards) for the awkward table also matches its decoys. Each table holds 3 rows whose
-- source_table column is its own qualified name as SQL writes it, so a test can tell exactly
-- which tables a restore brought back. Keep in sync with SAMPLE_AWKWARD_TABLES (sandbox.py).
------------------------------------------------------------------------------------------------

CREATE TABLE public."star*name" (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public.starxname  (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public.star_name  (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public.starname   (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public."what?"    (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public.whatx      (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public."Mixed Case" (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public."mixed case" (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public."dot.name" (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE dot.name          (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public."quote""name" (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE public.quotename  (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE "café"."Été"      (id integer PRIMARY KEY, source_table text NOT NULL);
CREATE TABLE "café"."été"      (id integer PRIMARY KEY, source_table text NOT NULL);

INSERT INTO public."star*name" SELECT g, 'public."star*name"' FROM generate_series(1, 3) AS g;
INSERT INTO public.starxname   SELECT g, 'public.starxname' FROM generate_series(1, 3) AS g;
INSERT INTO public.star_name   SELECT g, 'public.star_name' FROM generate_series(1, 3) AS g;
INSERT INTO public.starname    SELECT g, 'public.starname' FROM generate_series(1, 3) AS g;
INSERT INTO public."what?"     SELECT g, 'public."what?"' FROM generate_series(1, 3) AS g;
INSERT INTO public.whatx       SELECT g, 'public.whatx' FROM generate_series(1, 3) AS g;
INSERT INTO public."Mixed Case" SELECT g, 'public."Mixed Case"' FROM generate_series(1, 3) AS g;
INSERT INTO public."mixed case" SELECT g, 'public."mixed case"' FROM generate_series(1, 3) AS g;
INSERT INTO public."dot.name"  SELECT g, 'public."dot.name"' FROM generate_series(1, 3) AS g;
INSERT INTO dot.name           SELECT g, 'dot.name' FROM generate_series(1, 3) AS g;
INSERT INTO public."quote""name" SELECT g, 'public."quote""name"' FROM generate_series(1, 3) AS g;
INSERT INTO public.quotename   SELECT g, 'public.quotename' FROM generate_series(1, 3) AS g;
INSERT INTO "café"."Été"       SELECT g, '"café"."Été"' FROM generate_series(1, 3) AS g;
INSERT INTO "café"."été"       SELECT g, '"café"."été"' FROM generate_series(1, 3) AS g;

COMMENT ON TABLE public."quote""name" IS 'A table whose name contains a double quote';
