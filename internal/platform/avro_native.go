package platform

import (
	"fmt"

	"github.com/ordersys/ecosystem/internal/domain"
)

// The functions below translate between domain records and goavro's native form of the
// shipped schemas. Records written with another schema (registry mode) reach them already
// resolved to that form (avro_resolve.go).

func orderToNative(o domain.Order) map[string]any {
	return map[string]any{
		"id":         o.ID,
		"customerId": o.CustomerID,
		"state":      string(o.State),
		"product":    string(o.Product),
		"quantity":   o.Quantity,
		"price":      o.Price,
	}
}

func orderFromNative(m map[string]any) (domain.Order, error) {
	var o domain.Order
	r := nativeReader{m: m}
	o.ID = r.str("id", nil)
	o.CustomerID = r.long("customerId")
	o.State = domain.OrderState(r.str("state", nil))
	o.Product = domain.Product(r.str("product", nil))
	o.Quantity = r.int("quantity")
	o.Price = r.double("price")
	if r.err != nil {
		return o, r.err
	}
	if !o.State.Valid() {
		return o, fmt.Errorf("unknown order state %q", o.State)
	}
	if !o.Product.Valid() {
		return o, fmt.Errorf("unknown product %q", o.Product)
	}
	return o, nil
}

func validationToNative(v domain.OrderValidation) map[string]any {
	return map[string]any{
		"orderId":          v.OrderID,
		"checkType":        string(v.CheckType),
		"validationResult": string(v.ValidationResult),
	}
}

func validationFromNative(m map[string]any) (domain.OrderValidation, error) {
	r := nativeReader{m: m}
	v := domain.OrderValidation{
		OrderID:          r.str("orderId", nil),
		CheckType:        domain.CheckType(r.str("checkType", nil)),
		ValidationResult: domain.ValidationResult(r.str("validationResult", nil)),
	}
	if r.err != nil {
		return v, r.err
	}
	if !v.CheckType.Valid() {
		return v, fmt.Errorf("unknown check type %q", v.CheckType)
	}
	if !v.ValidationResult.Valid() {
		return v, fmt.Errorf("unknown validation result %q", v.ValidationResult)
	}
	return v, nil
}

func paymentToNative(p domain.Payment) map[string]any {
	return map[string]any{"id": p.ID, "orderId": p.OrderID, "ccy": p.Ccy, "amount": p.Amount}
}

func paymentFromNative(m map[string]any) (domain.Payment, error) {
	r := nativeReader{m: m}
	p := domain.Payment{
		ID:      r.str("id", nil),
		OrderID: r.str("orderId", nil),
		Ccy:     r.str("ccy", nil),
		Amount:  r.double("amount"),
	}
	return p, r.err
}

func customerToNative(c domain.Customer) map[string]any {
	level := c.Level
	if level == "" {
		level = domain.DefaultCustomerLevel
	}
	return map[string]any{
		"id": c.ID, "firstName": c.FirstName, "lastName": c.LastName,
		"email": c.Email, "address": c.Address, "level": level,
	}
}

func customerFromNative(m map[string]any) (domain.Customer, error) {
	r := nativeReader{m: m}
	defaultLevel := domain.DefaultCustomerLevel
	c := domain.Customer{
		ID:        r.long("id"),
		FirstName: r.str("firstName", nil),
		LastName:  r.str("lastName", nil),
		Email:     r.str("email", nil),
		Address:   r.str("address", nil),
		Level:     r.str("level", &defaultLevel),
	}
	return c, r.err
}

func enrichedToNative(e domain.OrderEnriched) map[string]any {
	return map[string]any{"id": e.ID, "customerId": e.CustomerID, "customerLevel": e.CustomerLevel}
}

func enrichedFromNative(m map[string]any) (domain.OrderEnriched, error) {
	r := nativeReader{m: m}
	e := domain.OrderEnriched{
		ID:            r.str("id", nil),
		CustomerID:    r.long("customerId"),
		CustomerLevel: r.str("customerLevel", nil),
	}
	return e, r.err
}

func orderValueToNative(v domain.OrderValue) map[string]any {
	return map[string]any{"order": orderToNative(v.Order), "value": v.Value}
}

func orderValueFromNative(m map[string]any) (domain.OrderValue, error) {
	r := nativeReader{m: m}
	var v domain.OrderValue
	inner, ok := m["order"].(map[string]any)
	if !ok {
		return v, fmt.Errorf("field order: missing or not a record")
	}
	o, err := orderFromNative(inner)
	if err != nil {
		return v, fmt.Errorf("field order: %w", err)
	}
	v.Order = o
	v.Value = r.double("value")
	return v, r.err
}

// nativeReader reads typed fields from a goavro native record, keeping the first error.
type nativeReader struct {
	m   map[string]any
	err error
}

func (r *nativeReader) field(name string) (any, bool) {
	v, ok := r.m[name]
	if !ok && r.err == nil {
		r.err = fmt.Errorf("field %s: missing", name)
	}
	return v, ok
}

func (r *nativeReader) wrongType(name string, v any, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("field %s: got %T, want %s", name, v, want)
	}
}

// str reads a string (goavro gives enums as strings too); def is the schema default, if any.
func (r *nativeReader) str(name string, def *string) string {
	if def != nil {
		if _, ok := r.m[name]; !ok {
			return *def
		}
	}
	v, ok := r.field(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.wrongType(name, v, "string")
	}
	return s
}

func (r *nativeReader) long(name string) int64 {
	v, ok := r.field(name)
	if !ok {
		return 0
	}
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	}
	r.wrongType(name, v, "long")
	return 0
}

func (r *nativeReader) int(name string) int32 {
	v, ok := r.field(name)
	if !ok {
		return 0
	}
	n, ok := v.(int32)
	if !ok {
		r.wrongType(name, v, "int")
	}
	return n
}

func (r *nativeReader) double(name string) float64 {
	v, ok := r.field(name)
	if !ok {
		return 0
	}
	switch n := v.(type) {
	case float64:
		return n
	case float32:
		return float64(n)
	}
	r.wrongType(name, v, "double")
	return 0
}
