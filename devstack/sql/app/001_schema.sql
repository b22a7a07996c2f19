-- Sanvi Machinery application schema (the database the guide's DBA tasks look after).
--
-- The local stack seeds this into `sanvi_app` so VACUUM ANALYZE, backups, restore drills and
-- capacity queries have real tables, foreign keys, indexes and dead tuples to work on.
-- Idempotent: every statement is IF NOT EXISTS, so re-applying it on start is a no-op.

CREATE TABLE IF NOT EXISTS users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text        NOT NULL UNIQUE,
    full_name      text        NOT NULL,
    role           text        NOT NULL CHECK (role IN ('admin', 'dispatcher', 'technician', 'sales', 'finance')),
    password_hash  text        NOT NULL,
    active         boolean     NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    industry    text        NOT NULL,
    country     char(2)     NOT NULL,
    city        text        NOT NULL,
    tier        text        NOT NULL CHECK (tier IN ('standard', 'gold', 'platinum')),
    email       text        NOT NULL,
    phone       text,
    account_manager_id bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customers_country_idx ON customers (country);
CREATE INDEX IF NOT EXISTS customers_account_manager_idx ON customers (account_manager_id);

CREATE TABLE IF NOT EXISTS machine_models (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                   text          NOT NULL UNIQUE,
    name                   text          NOT NULL,
    category               text          NOT NULL,
    power_kw               numeric(8, 1) NOT NULL,
    list_price             numeric(12, 2) NOT NULL,
    service_interval_hours integer       NOT NULL CHECK (service_interval_hours > 0),
    created_at             timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS machines (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    serial_number    text        NOT NULL UNIQUE,
    model_id         bigint      NOT NULL REFERENCES machine_models (id),
    customer_id      bigint      NOT NULL REFERENCES customers (id),
    status           text        NOT NULL CHECK (status IN ('active', 'maintenance', 'down', 'retired')),
    installed_at     date        NOT NULL,
    operating_hours  integer     NOT NULL DEFAULT 0,
    last_service_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS machines_customer_idx ON machines (customer_id);
CREATE INDEX IF NOT EXISTS machines_model_idx ON machines (model_id);
CREATE INDEX IF NOT EXISTS machines_status_idx ON machines (status) WHERE status <> 'active';

CREATE TABLE IF NOT EXISTS parts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku         text          NOT NULL UNIQUE,
    name        text          NOT NULL,
    unit_price  numeric(10, 2) NOT NULL CHECK (unit_price >= 0),
    weight_kg   numeric(8, 3) NOT NULL,
    created_at  timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS warehouses (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code  text NOT NULL UNIQUE,
    city  text NOT NULL
);

CREATE TABLE IF NOT EXISTS inventory (
    warehouse_id      bigint      NOT NULL REFERENCES warehouses (id),
    part_id           bigint      NOT NULL REFERENCES parts (id),
    quantity_on_hand  integer     NOT NULL CHECK (quantity_on_hand >= 0),
    reorder_level     integer     NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, part_id)
);
CREATE INDEX IF NOT EXISTS inventory_part_idx ON inventory (part_id);

CREATE TABLE IF NOT EXISTS service_orders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_id      bigint        NOT NULL REFERENCES machines (id),
    customer_id     bigint        NOT NULL REFERENCES customers (id),
    technician_id   bigint        REFERENCES users (id),
    kind            text          NOT NULL CHECK (kind IN ('preventive', 'repair', 'installation', 'inspection')),
    priority        text          NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status          text          NOT NULL CHECK (status IN ('open', 'scheduled', 'in_progress', 'completed', 'cancelled')),
    description     text          NOT NULL,
    labour_hours    numeric(6, 2),
    opened_at       timestamptz   NOT NULL,
    scheduled_for   timestamptz,
    closed_at       timestamptz,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS service_orders_machine_idx ON service_orders (machine_id);
CREATE INDEX IF NOT EXISTS service_orders_customer_idx ON service_orders (customer_id);
CREATE INDEX IF NOT EXISTS service_orders_technician_idx ON service_orders (technician_id);
CREATE INDEX IF NOT EXISTS service_orders_open_idx ON service_orders (opened_at)
    WHERE status IN ('open', 'scheduled', 'in_progress');

CREATE TABLE IF NOT EXISTS service_order_parts (
    service_order_id  bigint        NOT NULL REFERENCES service_orders (id) ON DELETE CASCADE,
    part_id           bigint        NOT NULL REFERENCES parts (id),
    quantity          integer       NOT NULL CHECK (quantity > 0),
    unit_price        numeric(10, 2) NOT NULL,
    PRIMARY KEY (service_order_id, part_id)
);
CREATE INDEX IF NOT EXISTS service_order_parts_part_idx ON service_order_parts (part_id);

CREATE TABLE IF NOT EXISTS invoices (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_number    text          NOT NULL UNIQUE,
    customer_id       bigint        NOT NULL REFERENCES customers (id),
    service_order_id  bigint        REFERENCES service_orders (id),
    status            text          NOT NULL CHECK (status IN ('draft', 'issued', 'paid', 'overdue', 'void')),
    currency          char(3)       NOT NULL DEFAULT 'EUR',
    total_amount      numeric(12, 2) NOT NULL,
    issued_at         timestamptz   NOT NULL,
    due_at            timestamptz   NOT NULL,
    paid_at           timestamptz,
    created_at        timestamptz   NOT NULL DEFAULT now(),
    updated_at        timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS invoices_customer_idx ON invoices (customer_id);
CREATE INDEX IF NOT EXISTS invoices_service_order_idx ON invoices (service_order_id);
CREATE INDEX IF NOT EXISTS invoices_unpaid_idx ON invoices (due_at) WHERE status IN ('issued', 'overdue');

CREATE TABLE IF NOT EXISTS audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    actor_id     bigint      REFERENCES users (id),
    action       text        NOT NULL,
    entity       text        NOT NULL,
    entity_id    bigint      NOT NULL,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_occurred_idx ON audit_log (occurred_at);
CREATE INDEX IF NOT EXISTS audit_log_entity_idx ON audit_log (entity, entity_id);
