-- Deterministic demo data for the Sanvi Machinery application database.
--
-- Tens of thousands of rows in a few seconds, all from generate_series and modular arithmetic
-- (no random(), no now()): every run, on every machine, yields the same rows, so restore drills
-- can compare checksums and tests can assert counts. Timestamps hang off a fixed anchor
-- (2026-01-01 UTC) and span the three years before it.
--
-- Seeds only an empty database: the whole block returns at once when `users` has a row, so
-- applying this file again (every `make run`) never duplicates or changes anything. Explicit
-- ids (OVERRIDING SYSTEM VALUE) keep foreign keys exact even if an earlier attempt rolled back
-- and advanced the identity sequences; the sequences are moved past the seeded ids at the end.

DO $seed$
DECLARE
    anchor constant timestamptz := '2026-01-01 00:00:00+00';
    n_orders constant int := 40000;     -- service orders over three years, oldest first
    n_audit constant int := 60000;      -- audit log entries over the same span
    first_names constant text[] := ARRAY['Anna','Ben','Chiara','Dmitri','Elena','Farid','Greta','Hiro',
        'Ines','Jonas','Kavya','Lars','Maya','Nils','Olga','Pedro','Quinn','Rosa','Sanvi','Tomas'];
    last_names constant text[] := ARRAY['Andersen','Bauer','Costa','Dubois','Eriksen','Fischer','Garcia',
        'Hansen','Ivanova','Jensen','Kowalski','Larsen','Moreau','Novak','Olsen','Petrov','Rossi','Schmidt'];
    industries constant text[] := ARRAY['construction','mining','agriculture','forestry','logistics',
        'manufacturing','utilities','port operations'];
    countries constant text[] := ARRAY['DE','DK','SE','NO','FI','NL','PL','FR','IT','ES','IN','US'];
    cities constant text[] := ARRAY['Hamburg','Aarhus','Gothenburg','Bergen','Tampere','Rotterdam',
        'Gdansk','Lyon','Turin','Bilbao','Pune','Houston'];
    categories constant text[] := ARRAY['excavator','wheel loader','crane','compactor','drill rig','forklift'];
    part_names constant text[] := ARRAY['hydraulic pump','oil filter','air filter','fuel injector','track roller',
        'bucket tooth','drive belt','alternator','starter motor','seal kit','bearing','control valve',
        'coolant hose','brake pad','sensor module','display unit'];
    actions constant text[] := ARRAY['create','update','update','update','view','approve','close','login'];
    entities constant text[] := ARRAY['service_order','machine','invoice','customer','inventory','user'];
BEGIN
    IF EXISTS (SELECT 1 FROM users) THEN
        RETURN;
    END IF;

    -- Bulk load without per-row foreign-key triggers (what pg_restore --disable-triggers does):
    -- the ids below are built to match, which tests check, and it makes the seed ~2x faster.
    -- Only a superuser may do this; anyone else seeds with the checks on. Reset at commit.
    IF current_setting('is_superuser') = 'on' THEN
        PERFORM set_config('session_replication_role', 'replica', true);
    END IF;

    INSERT INTO users (id, email, full_name, role, password_hash, active, last_login_at, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT i,
           format('%s.%s.%s@sanvi-machinery.example', lower(first_names[1 + i % 20]), lower(last_names[1 + i % 18]), i),
           first_names[1 + i % 20] || ' ' || last_names[1 + i % 18],
           CASE WHEN i <= 5 THEN 'admin' WHEN i <= 25 THEN 'dispatcher' WHEN i <= 200 THEN 'technician'
                WHEN i <= 235 THEN 'sales' ELSE 'finance' END,
           'scrypt$demo$' || md5('sanvi-user-' || i),
           i % 23 <> 0,
           anchor - make_interval(mins => (i * 97) % 20000),
           anchor - make_interval(days => 1095 - i % 365),
           anchor - make_interval(days => i % 90)
    FROM generate_series(1, 250) AS i;

    INSERT INTO customers (id, name, industry, country, city, tier, email, phone, account_manager_id, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT i,
           format('%s %s %s', last_names[1 + i % 18], initcap(industries[1 + i % 8]),
                  (ARRAY['GmbH','A/S','AB','AS','Oy','B.V.','Sp. z o.o.','SA','S.p.A.','S.L.','Pvt Ltd','Inc.'])[1 + i % 12]),
           industries[1 + i % 8],
           countries[1 + i % 12],
           cities[1 + i % 12],
           CASE WHEN i % 20 = 0 THEN 'platinum' WHEN i % 5 = 0 THEN 'gold' ELSE 'standard' END,
           format('ops%s@customer-%s.example', i, i),
           CASE WHEN i % 7 = 0 THEN NULL ELSE format('+%s %s', 30 + i % 60, lpad(((i * 7919) % 10000000)::text, 7, '0')) END,
           201 + i % 35,
           anchor - make_interval(days => 1095 - (i * 3) % 1000),
           anchor - make_interval(days => i % 180)
    FROM generate_series(1, 5000) AS i;

    INSERT INTO machine_models (id, code, name, category, power_kw, list_price, service_interval_hours, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT i,
           format('SM-%s-%s', upper(left(categories[1 + i % 6], 2)), 100 + i * 10),
           format('Sanvi %s %s', initcap(categories[1 + i % 6]), 100 + i * 10),
           categories[1 + i % 6],
           round((40 + (i * 37) % 400)::numeric, 1),
           round((85000 + (i * 7919) % 900000)::numeric, 2),
           (ARRAY[250, 500, 750, 1000])[1 + i % 4],
           anchor - make_interval(days => 2000 - i * 10)
    FROM generate_series(1, 60) AS i;

    INSERT INTO machines (id, serial_number, model_id, customer_id, status, installed_at, operating_hours,
                          last_service_at, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT i,
           format('SNV-%s-%s', 2019 + i % 7, lpad(i::text, 6, '0')),
           1 + (i * 7) % 60,
           1 + (i * 13) % 5000,
           CASE WHEN i % 97 = 0 THEN 'down' WHEN i % 41 = 0 THEN 'maintenance' WHEN i % 53 = 0 THEN 'retired'
                ELSE 'active' END,
           (anchor - make_interval(days => 30 + (i * 31) % 2500))::date,
           (i * 211) % 30000,
           CASE WHEN i % 11 = 0 THEN NULL ELSE anchor - make_interval(days => (i * 17) % 400) END,
           anchor - make_interval(days => 30 + (i * 31) % 2500),
           anchor - make_interval(days => (i * 17) % 400)
    FROM generate_series(1, 20000) AS i;

    INSERT INTO parts (id, sku, name, unit_price, weight_kg, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT i,
           format('P-%s', lpad(i::text, 6, '0')),
           format('%s, %s', initcap(part_names[1 + i % 16]), categories[1 + i % 6]),
           round((5 + (i * 7919) % 250000 / 100.0)::numeric, 2),
           round((0.1 + (i * 37) % 5000 / 100.0)::numeric, 3),
           anchor - make_interval(days => 1500 - i % 1000)
    FROM generate_series(1, 3000) AS i;

    INSERT INTO warehouses (id, code, city)
    OVERRIDING SYSTEM VALUE
    SELECT i, format('WH-%s', upper(left(cities[i], 3))), cities[i]
    FROM generate_series(1, 8) AS i;

    INSERT INTO inventory (warehouse_id, part_id, quantity_on_hand, reorder_level, updated_at)
    SELECT w, p, (p * 31 + w * 17) % 400, 10 + p % 40, anchor - make_interval(hours => (p * w) % 2000)
    FROM generate_series(1, 8) AS w, generate_series(1, 3000) AS p;

    INSERT INTO service_orders (id, machine_id, customer_id, technician_id, kind, priority, status, description,
                                labour_hours, opened_at, scheduled_for, closed_at, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT i, m, 1 + (m * 13) % 5000,
           CASE WHEN status = 'open' THEN NULL ELSE 26 + i % 175 END,
           kind, priority, status,
           format('%s of %s: %s', initcap(kind), format('SNV-%s', lpad(m::text, 6, '0')),
                  (ARRAY['scheduled interval service','hydraulic leak reported','engine warning light',
                         'abnormal vibration','operator training','annual safety inspection'])[1 + i % 6]),
           CASE WHEN status = 'completed' THEN round((0.5 + (i * 37) % 160 / 10.0)::numeric, 2) END,
           opened,
           CASE WHEN status = 'open' THEN NULL ELSE opened + make_interval(hours => 4 + i % 72) END,
           CASE WHEN status IN ('completed', 'cancelled') THEN opened + make_interval(hours => 8 + (i * 7) % 200) END,
           opened,
           opened + make_interval(hours => 8 + (i * 7) % 200)
    FROM (
        SELECT i,
               1 + (i * 7919) % 20000 AS m,
               anchor - make_interval(mins => (n_orders - i) * 39) AS opened,
               (ARRAY['preventive','preventive','repair','inspection','installation'])[1 + i % 5] AS kind,
               (ARRAY['normal','normal','low','high','urgent'])[1 + (i * 3) % 5] AS priority,
               CASE WHEN i > n_orders - 400 THEN (ARRAY['open','scheduled','in_progress'])[1 + i % 3]
                    WHEN i % 20 = 0 THEN 'cancelled' ELSE 'completed' END AS status
        FROM generate_series(1, n_orders) AS i
    ) AS o;

    INSERT INTO service_order_parts (service_order_id, part_id, quantity, unit_price)
    SELECT so.id, 1 + (so.id * 13 + k * 7) % 3000, 1 + (so.id + k) % 4, p.unit_price
    FROM service_orders AS so
    CROSS JOIN generate_series(0, 1) AS k
    JOIN parts AS p ON p.id = 1 + (so.id * 13 + k * 7) % 3000
    WHERE so.status <> 'cancelled';

    INSERT INTO invoices (id, invoice_number, customer_id, service_order_id, status, currency, total_amount,
                          issued_at, due_at, paid_at, created_at, updated_at)
    OVERRIDING SYSTEM VALUE
    SELECT n,
           format('INV-%s-%s', extract(year FROM so.closed_at)::int, lpad(n::text, 6, '0')),
           so.customer_id, so.id,
           CASE WHEN so.closed_at > anchor - interval '30 days' THEN 'issued'
                WHEN n % 50 = 0 THEN 'overdue' WHEN n % 199 = 0 THEN 'void' ELSE 'paid' END,
           'EUR',
           so.labour_hours * 95 + coalesce(parts.amount, 0),
           so.closed_at,
           so.closed_at + interval '30 days',
           CASE WHEN so.closed_at <= anchor - interval '30 days' AND n % 50 <> 0 AND n % 199 <> 0
                THEN so.closed_at + make_interval(days => 3 + n % 25) END,
           so.closed_at,
           so.closed_at + make_interval(days => n % 30)
    FROM (
        SELECT so.*, (row_number() OVER (ORDER BY so.id))::int AS n
        FROM service_orders AS so
        WHERE so.status = 'completed'
    ) AS so
    LEFT JOIN (
        SELECT service_order_id, sum(quantity * unit_price) AS amount
        FROM service_order_parts
        GROUP BY service_order_id
    ) AS parts ON parts.service_order_id = so.id;

    INSERT INTO audit_log (id, occurred_at, actor_id, action, entity, entity_id, details)
    OVERRIDING SYSTEM VALUE
    SELECT i,
           anchor - make_interval(secs => (n_audit - i) * 1577),
           CASE WHEN i % 29 = 0 THEN NULL ELSE 1 + (i * 7) % 250 END,
           actions[1 + i % 8],
           entities[1 + (i * 5) % 6],
           1 + (i * 7919) % 20000,
           jsonb_build_object('ip', format('10.%s.%s.%s', i % 8, (i * 3) % 256, (i * 7) % 256),
                              'user_agent', (ARRAY['web','mobile','api'])[1 + i % 3])
    FROM generate_series(1, n_audit) AS i;

    -- Identity sequences continue after the seeded ids, so the application can insert again.
    PERFORM setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
    PERFORM setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers));
    PERFORM setval(pg_get_serial_sequence('machine_models', 'id'), (SELECT max(id) FROM machine_models));
    PERFORM setval(pg_get_serial_sequence('machines', 'id'), (SELECT max(id) FROM machines));
    PERFORM setval(pg_get_serial_sequence('parts', 'id'), (SELECT max(id) FROM parts));
    PERFORM setval(pg_get_serial_sequence('warehouses', 'id'), (SELECT max(id) FROM warehouses));
    PERFORM setval(pg_get_serial_sequence('service_orders', 'id'), (SELECT max(id) FROM service_orders));
    PERFORM setval(pg_get_serial_sequence('invoices', 'id'), (SELECT max(id) FROM invoices));
    PERFORM setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log));
END
$seed$;
