// A thin RAII layer over the SQLite C API: a connection, prepared statements, transactions.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace natpilot::sqlite {

class Db;

class Stmt {
 public:
  Stmt(Db& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, std::string_view value);
  // SQLITE_ROW: true; SQLITE_DONE: false; anything else throws SqliteError.
  bool Step();
  // Step() that must finish without rows; returns the error instead of throwing.
  Result<void> Exec();
  int64_t Int(int col) const;
  std::string Text(int col) const;
  void Reset();

 private:
  Db& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Thrown inside the store. Methods returning Result catch it at their boundary (Guarded); the
// reads that return plain values (ListDevices, ListReleases, ListEvents) let it through, so it is a
// std::exception: every `catch (const std::exception&)` of a caller sees it.
struct SqliteError : std::runtime_error {
  SqliteError(int code_in, std::string message_in)
      : std::runtime_error(message_in), code(code_in), message(std::move(message_in)) {}
  int code;
  std::string message;
};

class Db {
 public:
  explicit Db(const std::string& path);  // throws SqliteError
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void Exec(std::string_view sql);  // throws SqliteError
  int64_t LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* raw() { return db_; }
  std::string ErrorMessage() const { return sqlite3_errmsg(db_); }

 private:
  sqlite3* db_ = nullptr;
};

// Rolls back unless Commit() was called.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) { db_.Exec("BEGIN IMMEDIATE"); }
  ~Transaction();
  void Commit() {
    db_.Exec("COMMIT");
    done_ = true;
  }

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace natpilot::sqlite
